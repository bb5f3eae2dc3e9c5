/**
 * Canonical JSON (sorted keys, no whitespace) and the single-line encoding of audit records.
 *
 * Both serialisers escape, besides what `JSON.stringify` escapes (C0 controls, `"`, `\`, lone
 * surrogates), DEL and the C1 controls (U+007F–U+009F: U+009B is a one-character CSI on some
 * terminals) and U+2028/U+2029 (line breaks to some viewers). Those characters can only occur
 * inside JSON strings, so escaping them keeps the text valid JSON and every record on one line
 * whatever the values hold (AUD-02).
 *
 * @module
 */
import { createHash } from 'node:crypto'

const EXTRA_ESCAPES = /[\u007f-\u009f\u2028\u2029]/g

function escapeExtra(json: string): string {
  return json.replace(EXTRA_ESCAPES, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function stringLiteral(value: string): string {
  return escapeExtra(JSON.stringify(value))
}

/**
 * Canonical JSON of a JSON value: object keys sorted by UTF-16 code units (as RFC 8785 does),
 * no whitespace, numbers as ECMAScript prints them. Object members whose value is `undefined` are
 * skipped, as `JSON.stringify` does.
 *
 * @throws TypeError for values JSON cannot represent (functions, bigint, symbols, non-finite
 *   numbers, cycles), so a hash never silently covers less than the caller meant.
 */
export function canonicalJson(value: unknown): string {
  return canonical(value, new Set())
}

function canonical(value: unknown, seen: Set<object>): string {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false'
    case 'string':
      return stringLiteral(value)
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot hold a non-finite number')
      return JSON.stringify(value)
    case 'object': {
      if (seen.has(value)) throw new TypeError('canonical JSON cannot hold a cycle')
      seen.add(value)
      try {
        if (Array.isArray(value)) {
          return `[${value.map((item) => (item === undefined ? 'null' : canonical(item, seen))).join(',')}]`
        }
        const entries = Object.keys(value)
          .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
          .sort()
          .map((key) => `${stringLiteral(key)}:${canonical((value as Record<string, unknown>)[key], seen)}`)
        return `{${entries.join(',')}}`
      } finally {
        seen.delete(value)
      }
    }
    default:
      throw new TypeError(`canonical JSON cannot hold a ${typeof value}`)
  }
}

/** `sha256:<64 hex>` of the UTF-8 bytes of `text`. */
export function sha256Tagged(text: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`
}

/**
 * `sha256:<hex>` of the canonical JSON of `value`: what audit records and spans carry instead of
 * arguments, code or results. Equal JSON values hash equally whatever their key order.
 *
 * @example hashArgs({ b: 1, a: 'x' }) === hashArgs({ a: 'x', b: 1 })
 * @throws TypeError when `value` is not representable as JSON.
 */
export function hashArgs(value: unknown): string {
  return sha256Tagged(canonicalJson(value))
}

/** One JSON line (without the newline) in the object's own key order, with the extra escapes. */
export function encodeJsonLine(value: Readonly<Record<string, unknown>>): string {
  return escapeExtra(JSON.stringify(value))
}

/** Pattern of a tagged SHA-256 digest. */
export const SHA256_TAGGED = /^sha256:[0-9a-f]{64}$/
