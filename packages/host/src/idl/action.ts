// `.action` files: splitting the text into goal, result and feedback, and the types ROS 2 derives
// from an action (as rosidl_parser's `Action` does), with their ROS names and fields:
//
//   <A>_SendGoal_Request    unique_identifier_msgs/UUID goal_id, <A>_Goal goal
//   <A>_SendGoal_Response   bool accepted, builtin_interfaces/Time stamp
//   <A>_GetResult_Request   unique_identifier_msgs/UUID goal_id
//   <A>_GetResult_Response  int8 status, <A>_Result result
//   <A>_FeedbackMessage     unique_identifier_msgs/UUID goal_id, <A>_Feedback feedback
//
// all in the package's `action` namespace (`example_interfaces/action/Fibonacci_SendGoal_Request`).
// The cancel service and the status topic are not per action: action_msgs/srv/CancelGoal and
// action_msgs/msg/GoalStatusArray (services/action_msgs).
import type { MessageDefinitionField } from "@foxglove/message-definition"
import { parseMessageLines, type DiagnosticSink, type RawMessage } from "./parse"
import type { IdlAction, IdlMessage, IdlService } from "./types"

/** Suffixes of the three messages written in a `.action` file, in file order. */
export const ACTION_PARTS = ["_Goal", "_Result", "_Feedback"] as const

export const UUID_TYPE = "unique_identifier_msgs/msg/UUID"
export const TIME_TYPE = "builtin_interfaces/msg/Time"
/** Messages every action's derived types use: they must be in the interface set. */
export const ACTION_DEPENDENCIES = [UUID_TYPE, TIME_TYPE] as const

/**
 * Splits the lines of a `.action` file at its two `---` lines and parses the three parts (problems
 * go to `report`). Returns undefined, after reporting, unless there are exactly two separators; the
 * lines around wrong separators are still checked, so one run shows every problem.
 */
export function splitAction(lines: readonly string[], report: DiagnosticSink): { raw: RawMessage; firstLine: number }[] | undefined {
  const seps = lines.flatMap((l, i) => (l.trim() === "---" ? [i] : []))
  const bounds = [-1, ...seps, lines.length]
  const parts = bounds.slice(0, -1).map((b, i) => {
    const from = b + 1
    return { raw: parseMessageLines(lines.slice(from, bounds[i + 1]), from + 1, report), firstLine: from + 1 }
  })
  if (seps.length === 2) return parts
  if (seps.length < 2) {
    const last = Math.max(1, lines.length - (lines[lines.length - 1] === "" ? 1 : 0))
    const found = seps.length === 0 ? "no '---' line" : "only one '---' line"
    report(last, 1, `a .action file has three parts, goal --- result --- feedback, separated by two '---' lines: ${found} found`)
  } else {
    const nth = ["third", "fourth", "fifth"]
    seps.slice(2).forEach((s, i) => report(s + 1, (lines[s] ?? "").indexOf("-") + 1, `a .action file has exactly two '---' separators (goal --- result --- feedback); this is a ${nth[i] ?? `${i + 3}th`} one`))
  }
  return undefined
}

const field = (type: string, name: string): MessageDefinitionField =>
  type.includes("/") ? { type, name, isComplex: true, isArray: false } : { type, name, isComplex: false, isArray: false }

/** How a field line of a derived type reads (`unique_identifier_msgs/UUID goal_id`). */
function line(f: MessageDefinitionField, pkg: string): string {
  const [p, , n] = f.type.split("/")
  return f.isComplex ? `${p === pkg && f.type.includes("/action/") ? n : `${p}/${n}`} ${f.name}\n` : `${f.type} ${f.name}\n`
}

/**
 * The action and its derived messages (send_goal and get_result halves, feedback message) from the
 * three parsed parts. Hashes are left at 0: the loader hashes every type once the set is complete.
 */
export function deriveAction(
  at: { pkg: string; name: string; file: string; root: string; text: string },
  [goal, result, feedback]: [IdlMessage, IdlMessage, IdlMessage],
): { action: IdlAction; derivedMessages: IdlMessage[] } {
  const base = `${at.pkg}/action/${at.name}`
  const message = (suffix: string, fields: MessageDefinitionField[]): IdlMessage => ({
    fullName: base + suffix,
    pkg: at.pkg,
    name: at.name + suffix,
    file: at.file,
    root: at.root,
    definition: { name: base + suffix, definitions: fields },
    text: fields.map((f) => line(f, at.pkg)).join(""),
    hash: "",
    hash32: 0,
  })
  const service = (suffix: string, request: IdlMessage, response: IdlMessage): IdlService => ({
    fullName: base + suffix,
    pkg: at.pkg,
    name: at.name + suffix,
    file: at.file,
    root: at.root,
    request,
    response,
    text: `${request.text}---\n${response.text}`,
    hash: "",
    hash32: 0,
  })
  const goalId = field(UUID_TYPE, "goal_id")
  const sendGoal = service(
    "_SendGoal",
    message("_SendGoal_Request", [goalId, field(goal.fullName, "goal")]),
    message("_SendGoal_Response", [field("bool", "accepted"), field(TIME_TYPE, "stamp")]),
  )
  const getResult = service(
    "_GetResult",
    message("_GetResult_Request", [{ ...goalId }]),
    message("_GetResult_Response", [field("int8", "status"), field(result.fullName, "result")]),
  )
  const feedbackMessage = message("_FeedbackMessage", [{ ...goalId }, field(feedback.fullName, "feedback")])
  const action: IdlAction = {
    fullName: base,
    pkg: at.pkg,
    name: at.name,
    file: at.file,
    root: at.root,
    goal,
    result,
    feedback,
    sendGoal,
    getResult,
    feedbackMessage,
    text: at.text,
    hash: "",
    hash32: 0,
  }
  return { action, derivedMessages: [sendGoal.request, sendGoal.response, getResult.request, getResult.response, feedbackMessage] }
}
