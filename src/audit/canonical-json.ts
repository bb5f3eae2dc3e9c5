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
import {
  canonicalJson as kernelCanonicalJson,
  escapeJsonExtras,
  sha256Tagged,
} from '../canonical-json.js'

export { sha256Tagged, SHA256_TAGGED } from '../canonical-json.js'

/** Canonical JSON with the audit's extra escapes, so a record is always one line. */
export function canonicalJson(value: unknown): string {
  return kernelCanonicalJson(value, { escapeLineBreaks: true })
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
  return escapeJsonExtras(JSON.stringify(value))
}
