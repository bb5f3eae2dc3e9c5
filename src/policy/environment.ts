/**
 * The typed CEL environment policies are written against, and the conversion of JS values into
 * CEL values. One environment is built per process; every `when` is checked against it at load.
 *
 * Numbers: JSON has one number type, CEL has `int` (BigInt here) and `double`. A whole number
 * within ±(2^53 − 1) becomes `int`; any other number becomes `double`. CEL compares `int` and
 * `double` across types (`args.amount > 1000` holds for 1500 and 1500.5), but does not mix them
 * in arithmetic: write `double(args.amount) * 1.5`.
 *
 * @module
 */
import { Environment, type ASTNode, type Limits } from '@marcbachmann/cel-js'
import type { Principal, Risk } from '../types.js'

/**
 * Parse-time limits for every `when`. The AST bound keeps a hostile or generated policy from
 * costing unbounded memory at load; cel-js's own defaults bound depth and literal sizes.
 */
export const POLICY_CEL_LIMITS: Readonly<Partial<Limits>> = Object.freeze({ maxAstNodes: 2000 })

/** Deepest nesting of an argument value that policy accepts; deeper input is denied. */
export const MAX_VALUE_DEPTH = 64

/** Variables that exist only while deciding a call, never while listing tools. */
export const CALL_PHASE_VARIABLES: ReadonlySet<string> = new Set(['args', 'execution'])

/** The variable whose value changes with time alone: a rule naming it can change its mind. */
export const CLOCK_VARIABLES: ReadonlySet<string> = new Set(['now'])

/** `principal` as CEL sees it; absent fields (a principal without tenant) stay absent. */
export class CelPrincipal {
  declare sub: string
  declare iss: string
  declare tenant?: string
  declare scopes: string[]
  declare claims: Map<string, unknown>
}

/** What a policy `tool` stands for; a resource's `name` is its upstream URI. */
export type ToolKind = 'tool' | 'prompt' | 'resource'

/** `tool` as CEL sees it. */
export class CelTool {
  declare server: string
  /** `tool`, `prompt` or `resource`: prompts and resources are authorised by the same rules. */
  declare kind: string
  declare name: string
  declare annotations: Map<string, unknown>
  declare hash: string
  /** The tool's data labels plus its server's, without repeats, sorted. */
  declare labels: string[]
  /** The tool's risk score (`registry/risk.ts`); prompts and resources are not scored. */
  declare risk: CelRisk
}

/** `tool.risk` as CEL sees it: `tool.risk.score >= 7.0`, `tool.risk.level == "high"`. */
export class CelRisk {
  declare score: number
  declare level: string
  declare reasons: string[]
}

/** What `tool.risk` holds for what has no score (a prompt, a resource). */
const UNSCORED: Readonly<Risk> = Object.freeze({ score: 0, level: 'low', reasons: ['not scored'] })

/** `execution` as CEL sees it. */
export class CelExecution {
  declare id: string
  declare callCount: bigint
  /** Labels of the calls authorised before this one, in the order the guest issued them. */
  declare labels: string[]
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

/** Raised when an input cannot become a CEL value; the caller turns it into a deny. */
export class PolicyInputError extends Error {
  override readonly name = 'PolicyInputError'
}

/** Builds the one environment: typed variables only, no undeclared name becomes `dyn`. */
export function createPolicyEnvironment(): Environment {
  return new Environment({ unlistedVariablesAreDyn: false, limits: { ...POLICY_CEL_LIMITS } })
    .registerType('sluice.Principal', {
      ctor: CelPrincipal,
      fields: {
        sub: 'string',
        iss: 'string',
        tenant: 'string',
        scopes: 'list<string>',
        claims: 'map<string, dyn>',
      },
    })
    .registerType('sluice.Tool', {
      ctor: CelTool,
      fields: {
        server: 'string',
        kind: 'string',
        name: 'string',
        annotations: 'map<string, dyn>',
        hash: 'string',
        labels: 'list<string>',
        risk: 'sluice.Risk',
      },
    })
    .registerType('sluice.Risk', {
      ctor: CelRisk,
      fields: { score: 'double', level: 'string', reasons: 'list<string>' },
    })
    .registerType('sluice.Execution', {
      ctor: CelExecution,
      fields: { id: 'string', callCount: 'int', labels: 'list<string>' },
    })
    .registerVariable('principal', 'sluice.Principal', { description: 'The caller' })
    .registerVariable('tool', 'sluice.Tool', { description: 'The tool being listed or called' })
    .registerVariable('args', 'map<string, dyn>', { description: 'Arguments (call phase only)' })
    .registerVariable('execution', 'sluice.Execution', { description: 'The running execution' })
    .registerVariable('now', 'google.protobuf.Timestamp', { description: 'Time of the decision' })
}

/**
 * Converts a JSON-like value into a CEL value: objects become `Map`s (so keys such as
 * `__proto__` or `constructor` are plain data), whole numbers become BigInt.
 *
 * @throws PolicyInputError for values JSON cannot carry or nesting deeper than MAX_VALUE_DEPTH.
 */
export function toCelValue(value: unknown, depth = 0): unknown {
  if (depth > MAX_VALUE_DEPTH) {
    throw new PolicyInputError(`value nests deeper than ${MAX_VALUE_DEPTH} levels`)
  }
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      if (!Number.isFinite(value))
        throw new PolicyInputError('a non-finite number is not JSON data')
      return Number.isSafeInteger(value) ? BigInt(value) : value
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX)
        throw new PolicyInputError('an integer outside the 64-bit range')
      return value
    case 'object': {
      if (value === null) return null
      if (Array.isArray(value)) return value.map((v) => toCelValue(v, depth + 1))
      const proto: unknown = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) {
        throw new PolicyInputError('value is not plain JSON data')
      }
      const map = new Map<string, unknown>()
      for (const [k, v] of Object.entries(value)) {
        if (v !== undefined) map.set(k, toCelValue(v, depth + 1))
      }
      return map
    }
    default:
      throw new PolicyInputError(`a ${typeof value} is not JSON data`)
  }
}

function toCelMap(value: Readonly<Record<string, unknown>> | undefined): Map<string, unknown> {
  const converted = toCelValue(value ?? {}, 0)
  if (!(converted instanceof Map)) throw new PolicyInputError('expected an object')
  return converted as Map<string, unknown>
}

export function toCelPrincipal(principal: Principal): CelPrincipal {
  const p = new CelPrincipal()
  p.sub = principal.sub
  p.iss = principal.iss
  if (principal.tenant !== undefined) p.tenant = principal.tenant
  p.scopes = [...principal.scopes]
  p.claims = toCelMap(principal.claims)
  return p
}

export function toCelTool(tool: {
  server: string
  kind?: ToolKind
  name: string
  annotations: Record<string, unknown>
  hash: string
  labels?: readonly string[]
  risk?: Risk
}): CelTool {
  const t = new CelTool()
  t.server = tool.server
  t.kind = tool.kind ?? 'tool'
  t.name = tool.name
  t.annotations = toCelMap(tool.annotations)
  t.hash = tool.hash
  t.labels = [...new Set(tool.labels ?? [])].sort()
  const risk = tool.risk ?? UNSCORED
  const r = new CelRisk()
  r.score = risk.score
  r.level = risk.level
  r.reasons = [...risk.reasons]
  t.risk = r
  return t
}

export function toCelExecution(execution: {
  id: string
  callCount: number
  labels?: readonly string[]
}): CelExecution {
  if (!Number.isSafeInteger(execution.callCount)) {
    throw new PolicyInputError('execution.callCount must be a whole number')
  }
  const e = new CelExecution()
  e.id = execution.id
  e.callCount = BigInt(execution.callCount)
  e.labels = [...new Set(execution.labels ?? [])]
  return e
}

export { toCelMap }

/**
 * True when the expression names one of `names` as a variable. Field names (`x.args`) do not
 * count; a macro binder that shadows one of the names does, which only errs on the safe side.
 */
export function referencesVariables(ast: ASTNode, names: ReadonlySet<string>): boolean {
  const stack: unknown[] = [ast]
  while (stack.length > 0) {
    const node = stack.pop()
    if (Array.isArray(node)) {
      stack.push(...(node as unknown[]))
      continue
    }
    if (node === null || typeof node !== 'object' || !('op' in node)) continue
    const n = node as { op: unknown; args: unknown }
    if (n.op === 'id') {
      if (typeof n.args === 'string' && names.has(n.args)) return true
      continue
    }
    if (n.op === 'value') continue
    stack.push(n.args)
  }
  return false
}
