/**
 * Canonical JSON (RFC 8785 style) and tagged SHA-256 digests: the one serialiser behind tool pins
 * (registry), argument and code hashes, and audit records. Kernel: every module may import it.
 *
 * @module
 */
import { hash } from 'node:crypto'

/** Nesting depth beyond which a value is refused (a hostile value must not blow the stack). */
export const MAX_CANONICAL_DEPTH = 512

export interface CanonicalJsonOptions {
  /**
   * Also escape DEL, the C1 controls (U+007F–U+009F; U+009B is a one-character CSI on some
   * terminals) and U+2028/U+2029 (line breaks to some viewers). They can only occur inside
   * strings, so the text stays valid JSON and always one line (audit records, AUD-02).
   */
  escapeLineBreaks?: boolean
}

const EXTRA_ESCAPES = /[\u007f-\u009f\u2028\u2029]/g

/** Escapes the characters `escapeLineBreaks` names in already-serialised JSON text. */
export function escapeJsonExtras(json: string): string {
  return json.replace(EXTRA_ESCAPES, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * Serialises plain JSON data canonically: object keys sorted by UTF-16 code units, no whitespace,
 * numbers and strings as ECMAScript's JSON.stringify writes them (which RFC 8785 adopts). Object
 * members whose value is `undefined` are left out, as JSON.stringify does.
 *
 * One deliberate difference from RFC 8785: a lone surrogate is escaped (`\udxxx`) instead of
 * refused, so a hostile definition still hashes (and then fails to match its pin).
 *
 * @throws TypeError for values that are not JSON: non-finite numbers, bigint, functions,
 *   symbols, `undefined` in arrays, class instances, or nesting deeper than 512 (cycles included).
 */
export function canonicalJson(value: unknown, options: CanonicalJsonOptions = {}): string {
  const text = write(value, 0)
  return options.escapeLineBreaks ? escapeJsonExtras(text) : text
}

function write(value: unknown, depth: number): string {
  if (depth > MAX_CANONICAL_DEPTH)
    throw new TypeError(`canonicalJson: nesting deeper than ${MAX_CANONICAL_DEPTH}`)
  if (value === null) return 'null'
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(value))
        throw new TypeError(`canonicalJson: ${value} is not a JSON number`)
      return JSON.stringify(value)
    case 'string':
      return JSON.stringify(value)
    case 'object':
      break
    default:
      throw new TypeError(`canonicalJson: a ${typeof value} is not JSON`)
  }
  if (Array.isArray(value)) {
    return `[${value
      .map((item: unknown) => {
        if (item === undefined)
          throw new TypeError('canonicalJson: undefined in an array is not JSON')
        return write(item, depth + 1)
      })
      .join(',')}]`
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError('canonicalJson: only plain objects and arrays are JSON')
  }
  const record = value as Record<string, unknown>
  const members: string[] = []
  for (const key of Object.keys(record).sort()) {
    const member = record[key]
    if (member === undefined) continue
    members.push(`${JSON.stringify(key)}:${write(member, depth + 1)}`)
  }
  return `{${members.join(',')}}`
}

/** `sha256:<64 hex>` of the UTF-8 bytes of `text`. */
export function sha256Tagged(text: string | Uint8Array): string {
  // The one-shot form: half the cost of a Hash object for a record-sized text.
  return `sha256:${hash('sha256', text, 'hex')}`
}

/** Pattern of a tagged SHA-256 digest. */
export const SHA256_TAGGED = /^sha256:[0-9a-f]{64}$/
