/**
 * The nouns of the bindings module: the tool shape it consumes, the problems it reports and the
 * work limits it enforces (RES-13). Pure data, no behaviour.
 *
 * @module
 */
import type { ToolDefinition } from '../types.js'

/** A tool as the bindings see it; `CatalogTool` is a structural superset. */
export interface BindingTool {
  /** The config key of the server (`servers.<name>`). */
  readonly server: string
  /** The upstream's own spelling of the tool name. */
  readonly name: string
  /** The JS identifier in `tools.<server>.<ident>` (see `sanitizeIdentifier`). */
  readonly ident: string
  readonly definition: ToolDefinition
}

/**
 * What went wrong:
 * - `INVALID_NAME`: a tool or server name outside `[A-Za-z0-9_.\-/]{1,128}`; the tool is not exposed.
 * - `NAME_COLLISION`: two names sanitise to one identifier; neither tool is exposed.
 * - `CASE_DUPLICATE`: two names differ only by case (TP-07); both are exposed, registration should refuse.
 * - `UNSUPPORTED_SCHEMA`: a construct TypeScript cannot express here; a wider type was emitted.
 * - `SCHEMA_LIMIT`: a depth, size or enum cap was hit; a wider type was emitted.
 * - `BAD_REF`: a `$ref` that is remote, dangling or directly self-referential; `unknown` was emitted.
 */
export type BindingProblemCode =
  | 'INVALID_NAME'
  | 'NAME_COLLISION'
  | 'CASE_DUPLICATE'
  | 'UNSUPPORTED_SCHEMA'
  | 'SCHEMA_LIMIT'
  | 'BAD_REF'

/** One finding about the catalogue. The message names tools and pointers, never schema values. */
export interface BindingProblem {
  readonly code: BindingProblemCode
  /**
   * `error`: the catalogue should not be accepted as is (a config error at registration);
   * `warning`: the bindings are correct but wider than the schema (the model sees `unknown` or less detail).
   */
  readonly severity: 'error' | 'warning'
  /** `server.tool` with the upstream's spelling, or `server` for a server-level problem. */
  readonly tool: string
  /** JSON pointer into the tool definition (`/inputSchema/properties/x/not`), when it applies. */
  readonly pointer?: string
  readonly message: string
}

/** Caps on the work one tool's schemas may cause (RES-13). Every cap is inclusive. */
export interface SchemaLimits {
  /** Deepest subschema nesting converted; the root schema is depth 1. Default 32. */
  readonly maxDepth: number
  /** Subschemas converted per schema (input or output), `$ref` targets counted once. Default 2000. */
  readonly maxNodes: number
  /** Members of one `enum` emitted as a literal union. Default 256. */
  readonly maxEnumValues: number
  /** Characters of one description kept in JSDoc; longer text is cut with `…`. Default 2000. */
  readonly maxDescriptionChars: number
}

/** The defaults of `SchemaLimits`. */
export const DEFAULT_SCHEMA_LIMITS: SchemaLimits = Object.freeze({
  maxDepth: 32,
  maxNodes: 2000,
  maxEnumValues: 256,
  maxDescriptionChars: 2000,
})
