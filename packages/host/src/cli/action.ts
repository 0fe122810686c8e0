// `robot action list|info|type|send_goal`: ros2-style action verbs. An action the robot hosts is
// four services (`<name>/_action/send_goal|cancel_goal|get_result|watch`, packages/device/src/lib/actions.ts):
// list, info and type read them from the service list of any backend; send_goal drives the Node
// action client (packages/host/src/client/action.ts) on the node the backend gives (cli/backends.ts
// `actionNode`: the robot's own over --serial, --devtools or --mqtt, call_service through a bridge).
// Ctrl-C during a goal cancels it on the robot. Errors print one line, as `robot service` does.
import type { Command } from "commander"
import { ActionClient, GOAL_LINK_GRACE_MS, GoalStatus, goalStatusName, isTerminal, type ClientGoal } from "../client/action"
import { DEFAULT_TIMEOUT_MS } from "../client/calls"
import { ServiceError } from "../client/errors"
import { normalizeName, splitRobotName } from "../client/names"
import { fromJson, YAML_RULES } from "../calls/json"
import { ACTION_PARTS, type ActionDescriptor } from "../runtime/action"
import { fullTypeName } from "../runtime/names"
import { type Backend, type ConnOptions, addConnOptions, withBackend } from "./backends"
import { UsageError, fail, hinted } from "./errors"
import * as fs from "node:fs"
import * as path from "node:path"
import { findImage, formatYaml } from "./format"
import { parseRequest } from "./request"
import { actionsOf, projectActionTypes } from "./types"

const ACTION_TYPE = /^[A-Za-z]\w*\/(action\/)?[A-Za-z]\w*$/

/** The robot's services and the actions among them (robots a fleet listing left out: on stderr). */
async function listActions(b: Backend): Promise<{ services: { name: string; type: string }[]; actions: { name: string; type: string }[] }> {
  const services = await b.list()
  for (const s of b.skipped ?? []) console.error(s.why === "offline" ? `robot ${s.robot} is offline: its actions are not listed` : `robot ${s.robot}: ${s.why}`)
  return { services, actions: actionsOf(services) }
}

/**
 * Action `name` and its type, or `unimplemented` naming the actions there are (on a fleet, the
 * robots' own names for it: `/rover1/fibonacci`).
 */
async function findAction(b: Backend, name: string): Promise<{ name: string; type: string }> {
  const goal = `${name}/_action/${ACTION_PARTS[0]}`
  let found: ServiceError | undefined
  try {
    const s = b.find ? await b.find(goal) : (await b.list()).find((x) => x.name === goal)
    const a = s && actionsOf([s])[0]
    if (a) return a
  } catch (e) {
    // a fleet's backend reads `/fibonacci/_action/send_goal` as robot `fibonacci`: the listing below says more
    if (!(e instanceof ServiceError)) throw e
    found = e
  }
  const { actions } = await listActions(b).catch(() => ({ actions: [] as { name: string }[] }))
  const namespaced = actions.map((x) => x.name).filter((x) => splitRobotName(x)?.service === name)
  if (namespaced.length) throw hinted(new ServiceError("unimplemented", `no action ${name}`, name), `the robots are named first: ${namespaced.sort().join(", ")}`)
  if (found) throw found
  throw hinted(new ServiceError("unimplemented", `no action ${name} on the robot`, name), actions.length ? `its actions: ${actions.map((x) => x.name).sort().join(", ")}` : "the robot hosts no action (robot service list shows its services)")
}

/** The type's descriptor from the built-in and the project's `.action` files, or the error naming those known. */
function actionType(type: string): ActionDescriptor<any, any, any> {
  if (!ACTION_TYPE.test(type)) throw new UsageError(`'${type}' is not an action type; give one such as example_interfaces/action/Fibonacci`)
  const types = projectActionTypes()
  const d = types[fullTypeName(type, "action")]
  if (!d) {
    throw hinted(
      new ServiceError("invalid_argument", `unknown action type ${fullTypeName(type, "action")}`),
      `the action types this project knows: ${Object.keys(types).sort().join(", ") || "none"} (its .action files under devs.json "interfaces")`,
    )
  }
  return d
}

/** The goal as the codec takes it: fields checked by name and range, `invalid_argument` naming the field. */
function goalOf(d: ActionDescriptor<any, any, any>, text: string | undefined): unknown {
  const hint = `check the goal against \`robot interface show ${d.fullName}\``
  try {
    const goal = fromJson(d.goal, parseRequest(text, "goal"), YAML_RULES)
    d.goal.encode(goal)
    return goal
  } catch (e) {
    if (e instanceof ServiceError) throw hinted(e, hint)
    // fromJson's ValueError, or the codec's own range and type errors
    throw hinted(new ServiceError("invalid_argument", `goal: ${(e as Error).message}`), hint)
  }
}

const STATUS_UPPER = (s: number) => goalStatusName(s).toUpperCase()

/**
 * The progress line on stderr while a goal runs, redrawn in place on a terminal only (nothing when
 * stderr is a file or a pipe): status, time, feedback heard. `clear()` before printing to stdout.
 */
function goalProgress(stream: { isTTY?: boolean; write(s: string): unknown } = process.stderr) {
  let start: number | undefined
  let status = "ACCEPTED"
  let feedback = 0
  let shown = false
  const draw = () => {
    if (!stream.isTTY || start === undefined) return
    shown = true
    stream.write(`\r\x1b[K[${status}] ${((performance.now() - start) / 1000).toFixed(1)} s, ${feedback} feedback`)
  }
  const timer = setInterval(draw, 200)
  timer.unref()
  return {
    /** the goal was accepted: the line shows from now on */
    start() {
      start = performance.now()
    },
    status(s: number) {
      status = STATUS_UPPER(s)
    },
    feedback() {
      feedback++
    },
    clear() {
      if (shown) stream.write("\r\x1b[K")
      shown = false
    },
    stop() {
      clearInterval(timer)
      this.clear()
    },
  }
}

/** action_msgs/srv/CancelGoal return codes, as the CLI says them */
const CANCEL_REFUSED: Record<number, string> = {
  1: "the robot refused to cancel it",
  2: "the robot does not know the goal (it restarted, or the goal's result was fetched)",
  3: "the goal had already ended",
}

/** `--out <folder>`: it must exist and be writable, checked before the goal is sent. */
function checkOutDir(dir: string): void {
  let st: fs.Stats
  try {
    st = fs.statSync(dir)
  } catch {
    throw new UsageError(`--out: the folder ${dir} does not exist (create it first)`)
  }
  if (!st.isDirectory()) throw new UsageError(`--out: ${dir} is not a folder (send_goal writes one file per picture in it)`)
  try {
    fs.accessSync(dir, fs.constants.W_OK)
  } catch {
    throw new UsageError(`--out: cannot write in ${dir} (permission denied)`)
  }
}

async function sendGoal(name: string, typeArg: string, text: string | undefined, o: ConnOptions & { feedback?: boolean; out?: string }): Promise<void> {
  const n = normalizeName(name)
  const d = actionType(typeArg)
  const goal = goalOf(d, text)
  if (o.out) checkOutDir(o.out)
  let pictures = 0
  await withBackend(o, async (b) => {
    const a = await findAction(b, n)
    if (a.type !== d.fullName) throw hinted(new ServiceError("type_mismatch", `${n} is ${a.type}, not ${d.fullName}`, n), `give ${a.type}`)
    const { node, name: onNode } = b.actionNode(n)
    const ac = new ActionClient(node, d, onNode)
    const progress = goalProgress()
    let g: ClientGoal<unknown, unknown> | undefined
    let interrupted = false
    // Ctrl-C: cancel the goal on the robot and say so; before the goal is accepted, cancel it as
    // soon as it is (its id is known only then); a second Ctrl-C leaves at once
    const cancel = async (goal: ClientGoal<unknown, unknown>) => {
      progress.stop()
      if (isTerminal(goal.status)) process.exit(130)
      console.log("Canceling goal...")
      try {
        const r = await goal.cancel({ timeoutMs: DEFAULT_TIMEOUT_MS })
        if (r.return_code === 0) console.log("Goal canceled.")
        else console.error(`robot action send_goal: failed to cancel goal: ${CANCEL_REFUSED[r.return_code] ?? `return code ${r.return_code}`}`)
      } catch (e) {
        console.error(`robot action send_goal: failed to cancel goal: ${(e as Error).message}; it may still run on the robot`)
      }
      process.exit(130)
    }
    let sending = false
    const onSigint = () => {
      if (interrupted || !sending) {
        progress.stop()
        if (!sending) console.error("robot action send_goal: interrupted (Ctrl+C) before the goal was sent")
        process.exit(130)
      }
      interrupted = true
      if (g) void cancel(g)
      else console.error("robot action send_goal: interrupted (Ctrl+C); the goal is canceled as soon as the robot accepts it")
    }
    process.on("SIGINT", onSigint)
    try {
      console.log("Waiting for an action server to become available...")
      // the four services with matching types, within the call default
      await ac.waitForServer({ timeoutMs: DEFAULT_TIMEOUT_MS })
      console.log(`Sending goal:\n${formatYaml(goal)}\n`)
      sending = true
      try {
        g = await ac.sendGoal(goal, {
          onStatus: (s) => progress.status(s),
          onFeedback: (f) => {
            progress.feedback()
            // --out: each picture the feedback carries (scan's), as <goal id>-<n>.<format>
            const img = o.out ? findImage(f) : undefined
            if (img && g) {
              const file = path.join(o.out!, `${g.id.slice(0, 8)}-${++pictures}.${img.format.split(/[ ;]/)[0] || "bin"}`)
              fs.writeFileSync(file, img.data)
              progress.clear()
              console.error(`saved ${file} (${img.data.length} bytes)`)
            }
            if (!o.feedback) return
            progress.clear()
            console.log(`Feedback:\n${formatYaml(f)}\n`)
          },
        })
      } catch (e) {
        if (e instanceof ServiceError && e.code === "resource_exhausted" && /^goal rejected/.test(e.detail)) {
          progress.stop()
          console.log("Goal was rejected.")
          process.exitCode = 1
          return
        }
        // a bridge that lists the action's services but has not their types (an older one) cannot call them
        if (e instanceof ServiceError && e.code === "unimplemented" && /^the bridge has no definition of /.test(e.detail))
          throw hinted(e, "this bridge does not serve actions: use one of this version (robot bridge), or reach the robot with --devtools, --serial or --mqtt")
        throw e
      }
      console.log(`Goal accepted with ID: ${g.id}\n`)
      progress.start()
      if (interrupted) return await cancel(g)
      const r = await g.result().catch((e: unknown) => {
        throw e instanceof ServiceError ? hinted(e, `the goal is lost to this client: the robot restarted, forgot it, or stayed out of reach for ${GOAL_LINK_GRACE_MS / 1000} s (goal ${g!.id})`) : e
      })
      // after Ctrl-C the cancel path has the last word (it ends the process once the robot answers)
      if (interrupted) return await new Promise<void>(() => {})
      progress.stop()
      console.log(`Result:\n${formatYaml(r.result)}\n`)
      console.log(`Goal finished with status: ${STATUS_UPPER(r.status)}`)
      if (r.status !== GoalStatus.succeeded) {
        console.error(`robot action send_goal: the goal ended ${goalStatusName(r.status)}${r.error ? `: ${r.error}` : ""}`)
        process.exitCode = 1
      }
    } finally {
      process.off("SIGINT", onSigint)
      progress.stop()
      ac.close()
    }
  })
}

export function registerAction(program: Command): void {
  const action = program.command("action").description("list, inspect and send goals to the robot's actions (like `ros2 action`)")

  addConnOptions(action.command("list").description("list the actions"))
    .option("-t, --show-types", "show each action's type")
    .action(async (o: ConnOptions & { showTypes?: boolean }) => {
      try {
        const { actions } = await withBackend(o, listActions)
        for (const a of actions.sort((x, y) => (x.name < y.name ? -1 : 1))) console.log(o.showTypes ? `${a.name} [${a.type}]` : a.name)
      } catch (e) {
        fail("list", e, "action")
      }
    })

  addConnOptions(action.command("type").argument("<name>", "action name, e.g. /fibonacci").description("print an action's type"))
    .action(async (name: string, o: ConnOptions) => {
      try {
        console.log((await withBackend(o, (b) => findAction(b, normalizeName(name)))).type)
      } catch (e) {
        fail("type", e, "action")
      }
    })

  addConnOptions(action.command("info").argument("<name>", "action name, e.g. /fibonacci").description("print who serves an action, and its services"))
    .option("-t, --show-types", "show the types")
    .action(async (name: string, o: ConnOptions & { showTypes?: boolean }) => {
      try {
        const n = normalizeName(name)
        await withBackend(o, async (b) => {
          const a = await findAction(b, n)
          const { services } = await listActions(b)
          const t = (type: string) => (o.showTypes ? ` [${type}]` : "")
          console.log(`Action: ${n}`)
          // the robot keeps no list of the hosts that follow its goals
          console.log("Action clients: unknown (the robot does not track them)")
          console.log(`Action servers: 1\n    ${b.actionNode(n).server}${t(a.type)}`)
          console.log("Services:")
          for (const part of ACTION_PARTS) {
            const s = services.find((x) => x.name === `${n}/_action/${part}`)
            console.log(`    ${n}/_action/${part}${s ? t(s.type) : " (missing: the action cannot be used)"}`)
          }
        })
      } catch (e) {
        fail("info", e, "action")
      }
    })

  addConnOptions(
    action
      .command("send_goal")
      .argument("<name>", "action name, e.g. /fibonacci (on a fleet /rover1/fibonacci)")
      .argument("<type>", "action type, e.g. example_interfaces/action/Fibonacci")
      .argument("[goal]", "the goal as YAML or JSON, e.g. \"{order: 5}\"")
      .description("send a goal, print its result (and feedback with -f); Ctrl-C cancels the goal on the robot (like `ros2 action send_goal`)"),
  )
    .option("-f, --feedback", "print the feedback")
    .option("--out <folder>", "save each picture the feedback carries (scan's) in this folder, as <goal id>-<n>.jpeg")
    .addHelpText(
      "after",
      '\nExample:\n  robot action send_goal /fibonacci example_interfaces/action/Fibonacci "{order: 5}" --feedback\n' +
        "\nExit status: 0 the goal succeeded; 1 it was aborted, canceled or rejected, or an error; 130 Ctrl-C (the goal canceled on the robot).",
    )
    .action(async (name: string, type: string, goal: string | undefined, o: ConnOptions & { feedback?: boolean; out?: string }) => {
      try {
        await sendGoal(name, type, goal, o)
      } catch (e) {
        fail("send_goal", e, "action")
      }
    })
}
