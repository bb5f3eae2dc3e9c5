/**
 * The kinds of personal data and secrets the guard finds, and the shape of one finding.
 *
 * @module
 */

// One list: the config's (kernel), so `guardrails.pii.detect` and the finders cannot disagree.
import { PII_KINDS, type PiiKind } from '../config/index.js'

export { PII_KINDS }
export type { PiiKind }

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
