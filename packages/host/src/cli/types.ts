// The service and action types the CLI's verbs know, and the action name rules, all in one place for
// them: the project's types are built in calls/projecttypes.ts (the bridge resolves its calls against
// them too), the action name rules live with the action wire (runtime/action.ts).
export { projectActionTypes, projectCallTypes, projectServiceTypes } from "../calls/projecttypes"
export { actionsOf, isActionService, type ActionTypes } from "../runtime/action"
export type { ServiceTypes } from "../runtime/types"
