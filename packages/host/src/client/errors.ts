// One error class with a closed list of codes, shared by the client, the bridge and the CLI.
import { WireStatus } from "../gen/wire"

/**
 * Every way a service call can fail, with the number the device sends on the wire: the statuses
 * of protocol/protocol.json (packages/host/src/gen/wire.ts) without `ok` and the two the client handles by
 * itself (`busy`, `stale`).
 */
const { ok: _ok, busy: _busy, stale: _stale, ...codes } = WireStatus
export const ErrorCodes = codes

export type ErrorCode = keyof typeof ErrorCodes

const byNumber = new Map<number, ErrorCode>(
  (Object.entries(ErrorCodes) as [ErrorCode, number][]).map(([k, v]) => [v, k]),
)

/** Maps a wire status number to its code; an unknown number is `internal`. */
export function errorCodeFromWire(n: number): ErrorCode {
  return byNumber.get(n) ?? "internal"
}

/** The only error a call rejects with. `code` is one of {@link ErrorCodes}. */
export class ServiceError extends Error {
  override readonly name = "ServiceError"
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The service the call was made to, when known (e.g. `/add_two_ints`). */
    readonly service?: string,
  ) {
    super(`${code}: ${message}`)
  }
  /** The message without the `code: ` prefix. */
  get detail(): string {
    return this.message.slice(this.code.length + 2)
  }
}
