/**
 * Canonical JSON (RFC 8785 style) and the definition hash that pins a tool. Two definitions that
 * mean the same JSON hash the same, whatever their key order or number spelling.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import type { DefinitionHash, ToolDefinition } from '../types.js'

/** Nesting depth beyond which a value is refused (a hostile schema must not blow the stack). */
export const MAX_CANONICAL_DEPTH = 512

/** The fields of a definition that the model or policy sees, hence the fields that are pinned. */
export const PINNED_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const

/**
 * Serialises plain JSON data canonically: object keys sorted by UTF-16 code units, no whitespace,
 * numbers and strings as ECMAScript's JSON.stringify writes them (which RFC 8785 adopts).
 * Object members whose value is `undefined` are left out, as JSON.stringify does.
 *
 * One deliberate difference from RFC 8785: a lone surrogate is escaped (`\udxxx`) instead of
 * refused, so a hostile definition still hashes (and then fails to match its pin).
 *
 * @throws TypeError for values that are not JSON: non-finite numbers, bigint, functions,
 *   symbols, `undefined` in arrays, class instances, or nesting deeper than 512.
 */
export function canonicalJson(value: unknown): string {
  return write(value, 0)
}

function write(value: unknown, depth: number): string {
  if (depth > MAX_CANONICAL_DEPTH) throw new TypeError(`canonicalJson: nesting deeper than ${MAX_CANONICAL_DEPTH}`)
  if (value === null) return 'null'
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${value} is not a JSON number`)
      return JSON.stringify(value)
    case 'string':
      return JSON.stringify(value)
    case 'object':
      break
    default:
      throw new TypeError(`canonicalJson: a ${typeof value} is not JSON`)
  }
  if (Array.isArray(value)) {
    return `[${value.map((item: unknown) => {
      if (item === undefined) throw new TypeError('canonicalJson: undefined in an array is not JSON')
      return write(item, depth + 1)
    }).join(',')}]`
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) throw new TypeError('canonicalJson: only plain objects and arrays are JSON')
  const record = value as Record<string, unknown>
  const members: string[] = []
  for (const key of Object.keys(record).sort()) {
    const member = record[key]
    if (member === undefined) continue
    members.push(`${JSON.stringify(key)}:${write(member, depth + 1)}`)
  }
  return `{${members.join(',')}}`
}

/** The pinned projection of a definition: only the fields in `PINNED_FIELDS`, absent ones left out. */
export function pinnedDefinition(definition: ToolDefinition): ToolDefinition {
  const picked: Record<string, unknown> = {}
  for (const field of PINNED_FIELDS) {
    if (definition[field] !== undefined) picked[field] = definition[field]
  }
  return picked as ToolDefinition
}

/**
 * `sha256:<hex>` over the canonical JSON of the pinned fields (`name`, `title`, `description`,
 * `inputSchema`, `outputSchema`, `annotations`). Any other field (`_meta`, `icons`, …) does not
 * change the hash, and is not exposed by `reconcile` either.
 */
export function hashDefinition(definition: ToolDefinition): DefinitionHash {
  const digest = createHash('sha256').update(canonicalJson(pinnedDefinition(definition)), 'utf8').digest('hex')
  return `sha256:${digest}` as DefinitionHash
}
