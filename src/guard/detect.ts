/**
 * `detect()`: one pass that rules kinds out ({@link possibleKinds}), the finders of the kinds
 * left, then one pass that keeps non-overlapping findings. Each finder is a handful of linear
 * regex scans with a cheap prefilter (`@`, `eyJ`, `-----BEGIN `, `+`, `:`), and validates only
 * the candidates.
 *
 * @module
 */
import { findApiKeys } from './api-key.js'
import { findEmails, findPhones } from './contact.js'
import { findCards, findIbans, findSsns } from './finance.js'
import { findJwts } from './jwt.js'
import { type Detection, PII_KINDS, type PiiKind } from './kinds.js'
import { findIps } from './network.js'
import { findPrivateKeys } from './pem.js'
import { hasInvisible } from '../text.js'
import {
  ALL_KINDS,
  type KindMask,
  kindMask,
  MAY_HOLD_INVISIBLE,
  possibleKinds,
  scanText,
} from './shape.js'

type Finder = (text: string, out: Detection[]) => void

const FINDERS: Record<PiiKind, Finder> = {
  email: findEmails,
  phone: findPhones,
  card: findCards,
  iban: findIbans,
  ssn: findSsns,
  ip: findIps,
  api_key: findApiKeys,
  jwt: findJwts,
  private_key: findPrivateKeys,
}
/** The finders in {@link PII_KINDS} order, bit `i` of a mask for the `i`-th. */
const BY_BIT: readonly Finder[] = PII_KINDS.map((kind) => FINDERS[kind])

/**
 * When two findings of equal length overlap, the more specific kind wins: structure checked
 * end to end (a PEM block, a JWT header, a mod-97 IBAN) beats a checksum, which beats a shape.
 */
const SPECIFICITY: Record<PiiKind, number> = {
  private_key: 9,
  jwt: 8,
  iban: 7,
  card: 6,
  ssn: 5,
  email: 4,
  ip: 3,
  phone: 2,
  api_key: 1,
}

/**
 * Non-overlapping detections of `kinds` (every kind by default), sorted by start. When two
 * overlap, the longer wins, then the more specific: a JWT is not also an api_key, a card inside
 * an IBAN is not a card.
 */
export function detect(text: string, kinds?: ReadonlySet<PiiKind>): Detection[] {
  return detectMasked(text, kinds === undefined ? ALL_KINDS : kindMask(kinds))
}

/**
 * Past this length the pass that rules kinds out is skipped: a long text (a file, a page) holds
 * the shapes of nearly every kind somewhere, so the pass would cost ≈4 ns a character and rule
 * out only the finders that are a single `indexOf` anyway.
 */
const RULE_OUT_MAX_CHARS = 4096

/** {@link detect} with the kinds as a mask, for a caller that asks for the same kinds often. */
export function detectMasked(text: string, mask: KindMask): Detection[] {
  const may = text.length > RULE_OUT_MAX_CHARS ? mask : possibleKinds(text, mask)
  return may === 0 ? [] : runFinders(text, may)
}

/**
 * {@link detectMasked}, or `undefined` when `text` holds a character `stripInvisible` changes
 * (which must go before detection: an invisible character inside a value splits it). The same
 * pass rules kinds out and looks for such characters.
 */
export function detectVisible(text: string, mask: KindMask): Detection[] | undefined {
  if (text.length > RULE_OUT_MAX_CHARS)
    return hasInvisible(text) ? undefined : runFinders(text, mask)
  const may = scanText(text, mask)
  if ((may & MAY_HOLD_INVISIBLE) !== 0 && hasInvisible(text)) return undefined
  const kinds = may & ~MAY_HOLD_INVISIBLE
  return kinds === 0 ? [] : runFinders(text, kinds)
}

/**
 * The finders of every kind in `mask`, with no pass to rule kinds out first: what
 * {@link detect} must agree with (the tests hold it to that).
 */
export function runFinders(text: string, mask: KindMask): Detection[] {
  const found: Detection[] = []
  for (let i = 0; i < BY_BIT.length; i++) if ((mask & (1 << i)) !== 0) BY_BIT[i]!(text, found)
  if (found.length < 2) return found
  found.sort(
    (a, b) => a.start - b.start || b.end - a.end || SPECIFICITY[b.kind] - SPECIFICITY[a.kind],
  )
  const kept: Detection[] = []
  for (const d of found) {
    const last = kept[kept.length - 1]
    if (last === undefined || d.start >= last.end) kept.push(d)
    else if (wins(d, last)) kept[kept.length - 1] = d
  }
  return kept
}

function wins(a: Detection, b: Detection): boolean {
  const la = a.end - a.start
  const lb = b.end - b.start
  return la > lb || (la === lb && SPECIFICITY[a.kind] > SPECIFICITY[b.kind])
}
