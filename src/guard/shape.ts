/**
 * One pass over a string that says which kinds can match in it at all, so that `detect()` runs
 * only those finders. Each test is a necessary condition of its finder's pattern, never a
 * sufficient one: a kind ruled out here cannot match, a kind let through may still find nothing.
 * Most strings in tool output (keys, ids, enums, prose, timestamps, digests) rule out every kind,
 * and then one cheap loop is all they cost.
 *
 * @module
 */
import { PII_KINDS, type PiiKind } from './kinds.js'

/** A bit per kind, in {@link PII_KINDS} order. */
export type KindMask = number

export const KIND_BIT: Readonly<Record<PiiKind, number>> = Object.fromEntries(
  PII_KINDS.map((kind, i) => [kind, 1 << i]),
) as Record<PiiKind, number>

export const ALL_KINDS: KindMask = (1 << PII_KINDS.length) - 1

/** The mask of `kinds`. */
export function kindMask(kinds: Iterable<PiiKind>): KindMask {
  let mask = 0
  for (const kind of kinds) mask |= KIND_BIT[kind]
  return mask
}

// Character classes, as bits of one table lookup per character.
const DIGIT = 1
const UPPER = 2
/** `[A-Za-z0-9_+/%-]`: what a key, a token run or a provider's key body is made of. */
const TOKEN = 4
/** Space or dash: what joins the digit groups of a card or an SSN. */
const JOIN = 8
/** One of `. : @ + J -`, each counted or looked at (rare, so the common letter skips them). */
const MARK = 16

const CLASS = new Uint8Array(128)
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT | TOKEN
for (let c = 65; c <= 90; c++) CLASS[c] = UPPER | TOKEN
for (let c = 97; c <= 122; c++) CLASS[c] = TOKEN
for (const c of '_+/%') CLASS[c.charCodeAt(0)] = TOKEN
CLASS[45] = TOKEN | JOIN // -
CLASS[32] = JOIN // space
for (const c of '.:@+J-') CLASS[c.charCodeAt(0)]! |= MARK

/** The fewest digits in a cluster (digits joined by single spaces or dashes) of a card. */
const CARD_CLUSTER_DIGITS = 13
/** `AAA-GG-SSSS`: nine digits in one cluster. */
const SSN_CLUSTER_DIGITS = 9
/** A phone number after `+` (E.164) has 8 digits or more; North American and trunk forms 9+. */
const PHONE_DIGITS_WITH_PLUS = 8
const PHONE_DIGITS = 9
/** The shortest key: Slack's `xoxb-` and 10 characters; token runs need 16. */
const API_KEY_RUN = 15

/**
 * The kinds of `mask` that may match somewhere in `text`:
 * - email: an `@`;
 * - phone: 9 digits, or a `+` and 8;
 * - card: a cluster of 13 digits, ssn: of 9 (a cluster: digits joined by single spaces or
 *   dashes, as `\d{3}(?:[ -]?\d){10}` and `\d{3}[ -]\d{2}[ -]\d{4}` need);
 * - iban: two capitals then two digits (`DE89`);
 * - ip: 4 digits and 3 dots (IPv4), or 2 colons (IPv6, whose anchor is `:hex{0,4}:`);
 * - api_key: a run of 15 key characters;
 * - jwt: `eyJ`; private_key: `-----` (before `BEGIN `).
 */
export function possibleKinds(text: string, mask: KindMask = ALL_KINDS): KindMask {
  let digits = 0
  let dots = 0
  let colons = 0
  let at = false
  let plus = false
  let ibanSeed = false
  let jwtSeed = false
  let dashes = 0
  let maxDashes = 0
  let cluster = 0
  let maxCluster = 0
  let joined = false // the previous character joins a cluster (a space or a dash after a digit)
  let previousDigit = false
  let run = 0
  let maxRun = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const k = c < 128 ? CLASS[c]! : 0
    if ((k & TOKEN) !== 0) {
      if (++run > maxRun) maxRun = run
    } else run = 0
    if ((k & DIGIT) !== 0) {
      digits++
      if (!previousDigit && !joined) cluster = 0
      if (++cluster > maxCluster) maxCluster = cluster
      // Two capitals, a digit, this digit (`DE89`).
      if (previousDigit && !ibanSeed && (classAt(text, i - 2) & classAt(text, i - 3) & UPPER) !== 0)
        ibanSeed = true
      previousDigit = true
      joined = false
      dashes = 0
      continue
    }
    joined = previousDigit && (k & JOIN) !== 0
    previousDigit = false
    if ((k & MARK) === 0) {
      dashes = 0
      continue
    }
    if (c === 45) {
      if (++dashes > maxDashes) maxDashes = dashes
      continue
    }
    dashes = 0
    if (c === 46) dots++
    else if (c === 58) colons++
    else if (c === 64) at = true
    else if (c === 43) plus = true
    else if (c === 74 && text.charCodeAt(i - 1) === 121 && text.charCodeAt(i - 2) === 101)
      jwtSeed = true // e y J
  }
  let may = 0
  if (at) may |= KIND_BIT.email
  if (digits >= PHONE_DIGITS || (plus && digits >= PHONE_DIGITS_WITH_PLUS)) may |= KIND_BIT.phone
  if (maxCluster >= CARD_CLUSTER_DIGITS) may |= KIND_BIT.card
  if (ibanSeed) may |= KIND_BIT.iban
  if (maxCluster >= SSN_CLUSTER_DIGITS) may |= KIND_BIT.ssn
  if ((digits >= 4 && dots >= 3) || colons >= 2) may |= KIND_BIT.ip
  if (maxRun >= API_KEY_RUN) may |= KIND_BIT.api_key
  if (jwtSeed) may |= KIND_BIT.jwt
  if (maxDashes >= 5) may |= KIND_BIT.private_key
  return may & mask
}

/** The class of the character at `i`; 0 outside the text or past ASCII. */
function classAt(text: string, i: number): number {
  const c = text.charCodeAt(i)
  return c < 128 ? CLASS[c]! : 0
}
