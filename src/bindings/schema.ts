/**
 * JSON Schema → TypeScript type text, for one tool's input or output schema. Bounded (RES-13),
 * never dereferences anything but local `$ref`s (TP-06), and never silently widens: whatever it
 * cannot express is emitted as a wider, still-correct type *and* reported as a problem.
 *
 * @module
 */
import type { BindingProblem, BindingProblemCode, SchemaLimits } from './model.js'
import {
  commentText,
  jsDoc,
  jsonForComment,
  pascalCase,
  propertyKey,
  stringLiteral,
} from './emit.js'

/** Type text with its precedence, so unions and intersections are parenthesised only when needed. */
interface TypeText {
  readonly t: string
  /** 0 atom, 1 intersection, 2 union. */
  readonly k: 0 | 1 | 2
}

const UNKNOWN: TypeText = { t: 'unknown', k: 0 }

// Keywords that narrow a schema in ways a TypeScript type cannot; the emitted type ignores them.
const UNSUPPORTED: Readonly<Record<string, string>> = {
  not: '"not" (negation) cannot be expressed',
  if: '"if"/"then"/"else" cannot be expressed',
  // biome-ignore lint/suspicious/noThenProperty: a JSON Schema keyword, never awaited
  then: '"if"/"then"/"else" cannot be expressed',
  else: '"if"/"then"/"else" cannot be expressed',
  patternProperties: '"patternProperties" is emitted as a string index signature of unknown',
  dependentSchemas: '"dependentSchemas" cannot be expressed',
  dependencies: '"dependencies" cannot be expressed',
  dependentRequired: '"dependentRequired" cannot be expressed',
  unevaluatedProperties: '"unevaluatedProperties" cannot be expressed',
  unevaluatedItems: '"unevaluatedItems" cannot be expressed',
  propertyNames: '"propertyNames" cannot be expressed',
  contains: '"contains" cannot be expressed',
  $dynamicRef: '"$dynamicRef" is not resolved',
  $recursiveRef: '"$recursiveRef" is not resolved',
}

// Keywords that become JSDoc tags, in this order.
const DOC_TAGS = [
  'format',
  'pattern',
  'minimum',
  'exclusiveMinimum',
  'maximum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
] as const

/** Registry of emitted type names; one per generated file, so names never clash. */
export class TypeNames {
  private readonly used = new Set<string>(['tools', 'console'])

  /** Reserves `base`, or `base2`, `base3`… when taken. */
  claim(base: string): string {
    let name = base
    for (let i = 2; this.used.has(name); i++) name = `${base}${i}`
    this.used.add(name)
    return name
  }
}

/** State for converting one root schema (a tool's `inputSchema` or `outputSchema`). */
export interface SchemaScope {
  /** `server.tool`, for problems. */
  readonly tool: string
  readonly root: unknown
  /** Pointer of the root inside the definition: `/inputSchema`. */
  readonly rootPointer: string
  /** Prefix of named types for `$ref` targets: `Memory_CreateEntities`. */
  readonly typePrefix: string
  /** The name of the root type itself, so `$ref: "#"` recurses into it. */
  readonly rootName: string
  readonly limits: SchemaLimits
  readonly names: TypeNames
  readonly problems: BindingProblem[]
  /** Named type declarations this root needed (`$ref` targets), in emission order. */
  readonly declarations: string[]
  /**
   * One line, no JSDoc: `{ name: string; tags?: string[] }`. The form the `execute_code`
   * description and `search_tools` answers use when the full declarations cost too many tokens.
   */
  readonly compact?: boolean
}

interface State {
  readonly scope: SchemaScope
  readonly named: Map<string, string>
  nodes: number
  nodeLimitHit: boolean
}

/** Converts the root schema of `scope`; returns the type text (named types go to `scope.declarations`). */
export function convertRoot(scope: SchemaScope): string {
  const state: State = {
    scope,
    named: new Map([['', scope.rootName]]),
    nodes: 0,
    nodeLimitHit: false,
  }
  return convert(state, scope.root, scope.rootPointer, 1, '', new Set([''])).t
}

/** JSDoc lines for a schema's own annotations: title, description, format, bounds, default. */
export function schemaDocLines(schema: unknown, limits: SchemaLimits): string[] {
  if (!isObject(schema)) return []
  const lines: string[] = []
  const max = limits.maxDescriptionChars
  if (typeof schema.title === 'string' && schema.title.trim() !== '')
    lines.push(commentText(schema.title, max))
  if (typeof schema.description === 'string' && schema.description.trim() !== '') {
    lines.push(commentText(schema.description, max))
  }
  if (schema.type === 'integer' || (Array.isArray(schema.type) && schema.type.includes('integer')))
    lines.push('@integer')
  for (const tag of DOC_TAGS) {
    if (!(tag in schema)) continue
    const value = schema[tag]
    lines.push(
      `@${tag} ${tag === 'format' && typeof value === 'string' ? commentText(value, 100) : jsonForComment(value, 200)}`,
    )
  }
  if ('default' in schema) lines.push(`@default ${jsonForComment(schema.default, 200)}`)
  if (Array.isArray(schema.examples) && schema.examples.length > 0) {
    lines.push(`@example ${jsonForComment(schema.examples[0], 200)}`)
  }
  if (schema.deprecated === true) lines.push('@deprecated')
  return lines
}

function convert(
  st: State,
  schema: unknown,
  ptr: string,
  depth: number,
  indent: string,
  unguarded: ReadonlySet<string>,
): TypeText {
  if (schema === true) return UNKNOWN
  if (schema === false) return { t: 'never', k: 0 }
  if (!isObject(schema)) {
    report(
      st,
      'UNSUPPORTED_SCHEMA',
      ptr,
      'a schema must be an object or a boolean; emitted unknown',
    )
    return UNKNOWN
  }
  if (depth > st.scope.limits.maxDepth) {
    report(
      st,
      'SCHEMA_LIMIT',
      ptr,
      `schema nesting exceeds maxDepth ${st.scope.limits.maxDepth}; emitted unknown`,
    )
    return UNKNOWN
  }
  st.nodes++
  if (st.nodes > st.scope.limits.maxNodes) {
    if (!st.nodeLimitHit) {
      st.nodeLimitHit = true
      report(
        st,
        'SCHEMA_LIMIT',
        ptr,
        `schema has more than maxNodes ${st.scope.limits.maxNodes} subschemas; the rest is unknown`,
      )
    }
    return UNKNOWN
  }
  for (const key of Object.keys(schema)) {
    const why = UNSUPPORTED[key]
    if (why !== undefined)
      report(
        st,
        'UNSUPPORTED_SCHEMA',
        `${ptr}/${key}`,
        `${why}; the emitted type is wider than the schema`,
      )
  }

  const parts: TypeText[] = []
  if ('$ref' in schema) parts.push(ref(st, schema.$ref, `${ptr}/$ref`, depth, unguarded))
  const base = baseType(st, schema, ptr, depth, indent)
  if (base !== undefined) parts.push(base)
  if ('allOf' in schema) {
    for (const [i, sub] of arrayOf(st, schema.allOf, `${ptr}/allOf`).entries()) {
      parts.push(convert(st, sub, `${ptr}/allOf/${i}`, depth + 1, indent, unguarded))
    }
  }
  for (const kw of ['anyOf', 'oneOf'] as const) {
    if (!(kw in schema)) continue
    const subs = arrayOf(st, schema[kw], `${ptr}/${kw}`)
    parts.push(
      union(
        subs.map((sub, i) => convert(st, sub, `${ptr}/${kw}/${i}`, depth + 1, indent, unguarded)),
      ),
    )
  }
  let out = intersection(parts)
  if (schema.nullable === true) out = union([out, { t: 'null', k: 0 }])
  return out
}

function baseType(
  st: State,
  schema: Record<string, unknown>,
  ptr: string,
  depth: number,
  indent: string,
): TypeText | undefined {
  const compact = st.scope.compact === true
  if ('const' in schema) return literal(schema.const, indent, compact)
  if ('enum' in schema) {
    const values = arrayOf(st, schema.enum, `${ptr}/enum`)
    if (values.length <= st.scope.limits.maxEnumValues)
      return union(values.map((v) => literal(v, indent, compact)))
    report(
      st,
      'SCHEMA_LIMIT',
      `${ptr}/enum`,
      `enum has ${values.length} values, more than maxEnumValues ${st.scope.limits.maxEnumValues}; emitted its base type`,
    )
  }
  let types: unknown[]
  if (typeof schema.type === 'string') types = [schema.type]
  else if (Array.isArray(schema.type)) types = schema.type
  else if ('type' in schema) {
    report(
      st,
      'UNSUPPORTED_SCHEMA',
      `${ptr}/type`,
      '"type" must be a string or an array of strings; emitted unknown',
    )
    return UNKNOWN
  } else if (
    ['properties', 'additionalProperties', 'required', 'patternProperties'].some((k) => k in schema)
  )
    types = ['object']
  else if (['items', 'prefixItems'].some((k) => k in schema)) types = ['array']
  else return undefined
  return union(
    types.map((type): TypeText => {
      switch (type) {
        case 'string':
          return { t: 'string', k: 0 }
        case 'number':
        case 'integer':
          return { t: 'number', k: 0 }
        case 'boolean':
          return { t: 'boolean', k: 0 }
        case 'null':
          return { t: 'null', k: 0 }
        case 'object':
          return objectType(st, schema, ptr, depth, indent)
        case 'array':
          return arrayType(st, schema, ptr, depth, indent)
        default:
          report(
            st,
            'UNSUPPORTED_SCHEMA',
            `${ptr}/type`,
            `unknown type ${jsonForComment(type, 40)}; emitted unknown`,
          )
          return UNKNOWN
      }
    }),
  )
}

function objectType(
  st: State,
  schema: Record<string, unknown>,
  ptr: string,
  depth: number,
  indent: string,
): TypeText {
  const compact = st.scope.compact === true
  const inner = `${indent}  `
  const props = isObject(schema.properties) ? schema.properties : {}
  if ('properties' in schema && !isObject(schema.properties)) {
    report(st, 'UNSUPPORTED_SCHEMA', `${ptr}/properties`, '"properties" must be an object; ignored')
  }
  const required = new Set(
    Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === 'string') : [],
  )
  const members: string[] = []
  const memberTypes: TypeText[] = []
  let anyOptional = false
  for (const [key, sub] of Object.entries(props)) {
    const type = convert(
      st,
      sub,
      `${ptr}/properties/${escapePointer(key)}`,
      depth + 1,
      inner,
      new Set(),
    )
    const optional = !required.has(key)
    anyOptional ||= optional
    memberTypes.push(type)
    const member = `${propertyKey(key)}${optional ? '?' : ''}: ${type.t}`
    members.push(
      compact ? member : `${jsDoc(schemaDocLines(sub, st.scope.limits), inner)}${inner}${member}`,
    )
  }
  for (const key of required) {
    if (Object.hasOwn(props, key)) continue
    memberTypes.push(UNKNOWN)
    members.push(`${compact ? '' : inner}${propertyKey(key)}: unknown`)
  }
  let index: TypeText | undefined
  const extra = schema.additionalProperties
  if (extra === true) index = UNKNOWN
  else if (extra !== undefined && extra !== false) {
    index = convert(st, extra, `${ptr}/additionalProperties`, depth + 1, inner, new Set())
  }
  if ('patternProperties' in schema) index = UNKNOWN
  if (index !== undefined) {
    // TypeScript requires every named property to fit the index signature.
    const all =
      index.t === 'unknown'
        ? UNKNOWN
        : union([
            index,
            ...memberTypes,
            ...(anyOptional ? [{ t: 'undefined', k: 0 as const }] : []),
          ])
    members.push(`${compact ? '' : inner}[key: string]: ${all.t}`)
  } else if (members.length === 0 && extra === false) {
    members.push(`${compact ? '' : inner}[key: string]: never`)
  }
  return block(members, indent, compact)
}

function arrayType(
  st: State,
  schema: Record<string, unknown>,
  ptr: string,
  depth: number,
  indent: string,
): TypeText {
  let prefix: unknown[] | undefined
  let rest: unknown
  let restPtr: string
  if (Array.isArray(schema.prefixItems)) {
    prefix = schema.prefixItems
    rest = schema.items
    restPtr = `${ptr}/items`
  } else if (Array.isArray(schema.items)) {
    prefix = schema.items
    rest = schema.additionalItems
    restPtr = `${ptr}/additionalItems`
  } else {
    const item =
      'items' in schema
        ? convert(st, schema.items, `${ptr}/items`, depth + 1, indent, new Set())
        : UNKNOWN
    return { t: item.k === 0 && !item.t.includes('\n') ? `${item.t}[]` : `Array<${item.t}>`, k: 0 }
  }
  const prefixKey = Array.isArray(schema.prefixItems) ? 'prefixItems' : 'items'
  const minItems = typeof schema.minItems === 'number' ? schema.minItems : 0
  const elements = prefix.map((sub, i) => {
    const t = convert(st, sub, `${ptr}/${prefixKey}/${i}`, depth + 1, indent, new Set())
    return i < minItems ? t.t : `${t.k === 0 ? t.t : `(${t.t})`}?`
  })
  if (rest !== false) {
    const r =
      rest === undefined ? UNKNOWN : convert(st, rest, restPtr, depth + 1, indent, new Set())
    elements.push(`...${r.k === 0 && !r.t.includes('\n') ? `${r.t}[]` : `Array<${r.t}>`}`)
  }
  return { t: `[${elements.join(', ')}]`, k: 0 }
}

function ref(
  st: State,
  value: unknown,
  ptr: string,
  depth: number,
  unguarded: ReadonlySet<string>,
): TypeText {
  if (typeof value !== 'string') {
    report(st, 'BAD_REF', ptr, '"$ref" must be a string; emitted unknown')
    return UNKNOWN
  }
  if (!value.startsWith('#')) {
    report(
      st,
      'BAD_REF',
      ptr,
      'only local "$ref"s ("#/…") are resolved, never remote ones; emitted unknown',
    )
    return UNKNOWN
  }
  const fragment = value.slice(1)
  if (fragment !== '' && !fragment.startsWith('/')) {
    report(st, 'BAD_REF', ptr, 'anchor "$ref"s ("#name") are not resolved; emitted unknown')
    return UNKNOWN
  }
  let segments: string[]
  try {
    segments =
      fragment === ''
        ? []
        : fragment
            .slice(1)
            .split('/')
            .map((s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'))
  } catch {
    report(st, 'BAD_REF', ptr, '"$ref" is not a valid JSON pointer; emitted unknown')
    return UNKNOWN
  }
  const key = segments.map(escapePointer).join('/')
  const existing = st.named.get(key)
  if (existing !== undefined) {
    if (unguarded.has(key)) {
      report(
        st,
        'BAD_REF',
        ptr,
        '"$ref" refers to itself with no object or array in between; emitted unknown',
      )
      return UNKNOWN
    }
    return { t: existing, k: 0 }
  }
  let target: unknown = st.scope.root
  for (const seg of segments) {
    if (isObject(target) && Object.hasOwn(target, seg)) target = target[seg]
    else if (Array.isArray(target) && /^(0|[1-9][0-9]*)$/.test(seg) && Number(seg) < target.length)
      target = target[Number(seg)]
    else {
      report(st, 'BAD_REF', ptr, '"$ref" points to nothing in this schema; emitted unknown')
      return UNKNOWN
    }
  }
  const last = segments[segments.length - 1] ?? 'Root'
  const name = st.scope.names.claim(`${st.scope.typePrefix}_${pascalCase(last)}`)
  st.named.set(key, name)
  const chain = new Set(unguarded)
  chain.add(key)
  const body = convert(st, target, `${st.scope.rootPointer}/${key}`, depth + 1, '', chain)
  st.scope.declarations.push(
    `${st.scope.compact === true ? '' : jsDoc(schemaDocLines(target, st.scope.limits), '')}type ${name} = ${body.t}\n`,
  )
  return { t: name, k: 0 }
}

/** An object type from its member lines: one per line, or `{ a: A; b: B }` when compact. */
function block(members: readonly string[], indent: string, compact: boolean): TypeText {
  if (members.length === 0) return { t: '{}', k: 0 }
  if (compact) return { t: `{ ${members.join('; ')} }`, k: 0 }
  return { t: `{\n${members.join('\n')}\n${indent}}`, k: 0 }
}

function literal(value: unknown, indent: string, compact: boolean): TypeText {
  if (value === null) return { t: 'null', k: 0 }
  if (typeof value === 'string') return { t: stringLiteral(value), k: 0 }
  if (typeof value === 'boolean') return { t: String(value), k: 0 }
  if (typeof value === 'number')
    return Number.isFinite(value) ? { t: String(value), k: 0 } : { t: 'number', k: 0 }
  if (Array.isArray(value))
    return {
      t: `readonly [${value.map((v) => literal(v, indent, compact).t).join(', ')}]`,
      k: 0,
    }
  if (isObject(value)) {
    const inner = `${indent}  `
    const members = Object.entries(value).map(
      ([k, v]) => `${compact ? '' : inner}${propertyKey(k)}: ${literal(v, inner, compact).t}`,
    )
    return block(members, indent, compact)
  }
  return UNKNOWN
}

function union(parts: readonly TypeText[]): TypeText {
  const seen = new Set<string>()
  const out: string[] = []
  for (const p of parts) {
    if (p.t === 'unknown') return UNKNOWN
    if (p.t === 'never') continue
    if (seen.has(p.t)) continue
    seen.add(p.t)
    out.push(p.t)
  }
  if (out.length === 0) return { t: 'never', k: 0 }
  if (out.length === 1) return parts.find((p) => p.t === out[0])!
  return { t: out.join(' | '), k: 2 }
}

function intersection(parts: readonly TypeText[]): TypeText {
  const useful = parts.filter((p) => p.t !== 'unknown')
  if (useful.length === 0) return UNKNOWN
  if (useful.length === 1) return useful[0]!
  return { t: useful.map((p) => (p.k === 2 ? `(${p.t})` : p.t)).join(' & '), k: 1 }
}

function arrayOf(st: State, value: unknown, ptr: string): unknown[] {
  if (Array.isArray(value)) return value
  report(st, 'UNSUPPORTED_SCHEMA', ptr, 'expected an array; ignored')
  return []
}

function report(st: State, code: BindingProblemCode, pointer: string, message: string): void {
  st.scope.problems.push({
    code,
    severity: 'warning',
    tool: st.scope.tool,
    pointer,
    message: `${st.scope.tool} ${/^[\x20-\x7e]*$/.test(pointer) ? pointer : JSON.stringify(pointer)}: ${message}`,
  })
}

/** JSON pointer escaping of one segment (RFC 6901). */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1')
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
