/**
 * `detect()`: every finder that the requested kinds need, then one pass that keeps
 * non-overlapping findings. Each finder is a handful of linear regex scans with a cheap
 * prefilter (`@`, `eyJ`, `-----BEGIN `, `+`, `:`), and validates only the candidates.
 *
 * @module
 */
import { findEmails, findPhones } from './contact.js'
import { findCards, findIbans, findSsns } from './finance.js'
import { type Detection, PII_KINDS, type PiiKind } from './kinds.js'
import { findIps } from './network.js'
import { findApiKeys } from './api-key.js'
import { findJwts } from './jwt.js'
import { findPrivateKeys } from './pem.js'

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

const ALL: ReadonlySet<PiiKind> = new Set(PII_KINDS)

/**
 * Non-overlapping detections sorted by start. When two overlap, the longer wins, then the more
 * specific: a JWT is not also an api_key, a card inside an IBAN is not a card.
 */
/**
 * The fewest digits any match of a kind holds: a phone has 8 or more (international, North
 * American and trunk forms alike), a card 13, an SSN 9, an IBAN its 2 check digits, an IPv4
 * address 4 (an IPv6 one may have none, so a colon also lets the finder run).
 */
const MIN_DIGITS: Readonly<Partial<Record<PiiKind, number>>> = {
  phone: 8,
  card: 13,
  ssn: 9,
  iban: 2,
  ip: 4,
}
/** The shortest text that can hold an API key (Slack's `xoxb-` and 10 characters). */
const MIN_API_KEY_TEXT = 15

function countDigits(text: string, atLeast: number): number {
  let n = 0
  for (let i = 0; i < text.length && n < atLeast; i++) {
    const c = text.charCodeAt(i)
    if (c >= 48 && c <= 57) n++
  }
  return n
}

/** Whether `kind` can match in `text` at all: most short tool strings rule most kinds out. */
function mayHold(kind: PiiKind, text: string, digits: number): boolean {
  const min = MIN_DIGITS[kind]
  if (min !== undefined && digits < min) return kind === 'ip' && text.includes(':')
  return kind !== 'api_key' || text.length >= MIN_API_KEY_TEXT
}

export function detect(text: string, kinds: ReadonlySet<PiiKind> = ALL): Detection[] {
  const found: Detection[] = []
  // Counted up to the most any kind needs (13): a long text stops early.
  const digits = countDigits(text, 13)
  for (const kind of PII_KINDS)
    if (kinds.has(kind) && mayHold(kind, text, digits)) FINDERS[kind](text, found)
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
