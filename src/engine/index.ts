/**
 * The engine: one execution end to end, the dispatcher that authorises every inner call, and the
 * live tool catalogue reconciled with the pinned lock.
 *
 * @module
 */
export { Engine } from './engine.js'
export type {
  ApprovalAnswer,
  ApprovalHandler,
  EngineDeps,
  EngineHealth,
  ExecuteOptions,
  SearchAnswer,
  SearchResult,
} from './engine.js'
export { Tasks } from './tasks.js'
export type { TaskDeps, TaskRunOptions, TaskSettings, TaskStart } from './tasks.js'
export { Catalog } from './catalog.js'
export type {
  CatalogEvent,
  CatalogOptions,
  Lookup,
  QuarantinedTool,
  ServerState,
} from './catalog.js'
export { mapToolResult, sanitizeMessage, errorText, MAX_MESSAGE_CHARS } from './result.js'
export type { UpstreamToolResult } from './result.js'
export { validateArgs, validateOutput } from './validate.js'
export type { ArgsCheck } from './validate.js'
export {
  Passthrough,
  PROMPT_SEPARATOR,
  RESOURCE_PREFIX,
  parseResourceUri,
  resourceUri,
} from './passthrough.js'
export type { PassthroughDeps, PassthroughOptions, PassthroughSuspended } from './passthrough.js'
export { MISTAKE_WARNING_CODES } from './mistakes.js'
export { LabelLedger } from './labels.js'
export { resolveForProblems, toolKeyProblems } from './tool-names.js'
