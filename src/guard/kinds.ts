/**
 * The kinds of personal data and secrets the guard finds, and the shape of one finding.
 *
 * @module
 */

/** A kind of personal data or secret; the names are the `guardrails.pii.detect` values. */
export type PiiKind =
  'email' | 'phone' | 'card' | 'iban' | 'ssn' | 'ip' | 'api_key' | 'jwt' | 'private_key'

/** Every kind, in the documented order (the order of `guardrails.pii.detect`'s default). */
export const PII_KINDS: readonly PiiKind[] = Object.freeze([
  'email',
  'phone',
  'card',
  'iban',
  'ssn',
  'ip',
  'api_key',
  'jwt',
  'private_key',
])

const KIND_SET: ReadonlySet<string> = new Set(PII_KINDS)

/** Whether `value` names a kind, for whoever reads kinds from config. */
export function isPiiKind(value: unknown): value is PiiKind {
  return typeof value === 'string' && KIND_SET.has(value)
}

/** One finding: `text.slice(start, end)` is the value, offsets in UTF-16 code units. */
export interface Detection {
  kind: PiiKind
  start: number
  end: number
}
