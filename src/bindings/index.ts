/**
 * The bindings module: pure functions from tool definitions to what the model sees — TypeScript
 * declarations, the guest manifest, a search index, the `execute_code` description — and
 * type-check diagnostics of the model's code. No I/O beyond reading TypeScript's own lib files.
 *
 * @module
 */
export type { BindingProblem, BindingProblemCode, BindingTool, SchemaLimits } from './model.js'
export { DEFAULT_SCHEMA_LIMITS } from './model.js'
export type { IdentifierCollision, NamedTool } from './names.js'
export {
  assignIdentifiers,
  describeCollision,
  identifierCollisions,
  IDENTIFIER_PATTERN,
  INVALID_NAME_REASON,
  isSafeIdentifier,
  sanitizeIdentifier,
  TOOL_NAME_PATTERN,
} from './names.js'
export type {
  BindingsCoverage,
  BindingsFileOptions,
  DeclarationOptions,
  Declarations,
} from './declarations.js'
export { generateDeclarations, renderBindingsFile } from './declarations.js'
export { buildManifest } from './manifest.js'
export type { FittedSearch, SearchHit, ToolSearchIndex } from './search.js'
export { createSearchIndex, fitSearchHits, MAX_SEARCH_LIMIT, tokenize } from './search.js'
export type { Description, DescriptionForm, DescriptionOptions } from './describe.js'
export {
  compactIndex,
  describeTools,
  EXECUTE_CODE_HEADER,
  OUTER_TOOLS_OVERHEAD_BYTES,
  renderDescription,
} from './describe.js'
export { NO_MODULES_ADVICE, sandboxAdvice } from './sandbox-globals.js'
export type { TypecheckOptions } from './typecheck.js'
export { checkDeclarations, DEFAULT_MAX_DIAGNOSTICS, typecheckCode } from './typecheck-lazy.js'
