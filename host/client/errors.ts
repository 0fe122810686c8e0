// One error class with a closed list of codes, shared by the client, the bridge and the CLI.

/** Every way a service call can fail. The numbers are what the device sends on the wire. */
export const ErrorCodes = {
  cancelled: 1,
  invalid_argument: 3,
  deadline_exceeded: 4,
  resource_exhausted: 8,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  type_mismatch: 100,
} as const

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
