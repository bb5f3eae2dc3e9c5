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
/** A token character that is not hex (nor `-`): a run of hex and dashes is a digest or a UUID. */
const NOT_HEX = 8
/** Space or dash: what joins the digit groups of a card or an SSN. */
const JOIN = 16
/** `[ .()/-]`: what separates the digit groups of a phone number. */
const PHONE_SEP = 32
/** One of `. : @ + J -`, each counted or looked at (rare, so the common letter skips them). */
const MARK = 64
/** A letter other than `J`: the common character, which only extends a token run. */
const LETTER = 128
/**
 * A character `stripInvisible` may remove or replace (src/text.ts): C0 controls but tab, line
 * feed and carriage return, DEL, and past ASCII the ranges that hold the rest (see
 * {@link highClass}). A necessary condition only: `hasInvisible` decides.
 */
const INVISIBLE = 256

// A plain array of small integers: V8 reads it faster than a typed array in this loop.
const CLASS: number[] = new Array<number>(128).fill(0)
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT | TOKEN
for (let c = 65; c <= 90; c++) CLASS[c] = UPPER | TOKEN | NOT_HEX
for (let c = 97; c <= 122; c++) CLASS[c] = TOKEN | NOT_HEX
for (const c of 'abcdefABCDEF') CLASS[c.charCodeAt(0)]! &= ~NOT_HEX
for (const c of '_+/%') CLASS[c.charCodeAt(0)] = TOKEN | NOT_HEX
for (const c of ' .()/-') CLASS[c.charCodeAt(0)]! |= PHONE_SEP
for (const c of ' -') CLASS[c.charCodeAt(0)]! |= JOIN
CLASS[45]! |= TOKEN // -
for (const c of '.:@+J-') CLASS[c.charCodeAt(0)]! |= MARK
for (let c = 65; c <= 122; c++)
  if ((CLASS[c]! & TOKEN) !== 0 && (CLASS[c]! & (DIGIT | MARK)) === 0 && c !== 95)
    CLASS[c]! |= LETTER
for (let c = 0; c < 32; c++) if (c !== 9 && c !== 10 && c !== 13) CLASS[c] = INVISIBLE
CLASS[127] = INVISIBLE

/**
 * The class of a character past ASCII: {@link INVISIBLE} for C1 controls (U+0080–U+009F),
 * U+200B–U+2069 (zero-width and directional marks, bidi embeddings, overrides, isolates and the
 * invisible operators, with the visible punctuation between them), the byte-order mark and
 * every surrogate (the tag block is astral; a lone surrogate is replaced), else 0.
 */
function highClass(c: number): number {
  return c < 0xa0 || (c >= 0x200b && c <= 0x2069) || (c >= 0xd800 && c <= 0xdfff) || c === 0xfeff
    ? INVISIBLE
    : 0
}

/**
 * The bit {@link scanText} adds to its kinds when `text` may hold a character that
 * `stripInvisible` changes; above every kind's bit.
 */
export const MAY_HOLD_INVISIBLE = 1 << 30

/** The fewest digits in a cluster (digits joined by single spaces or dashes) of a card. */
const CARD_CLUSTER_DIGITS = 13
/** `AAA-GG-SSSS`: nine digits and two joins in one cluster. */
const SSN_CLUSTER_DIGITS = 9
const SSN_CLUSTER_JOINS = 2
/** A phone number after `+` (E.164) has 8 digits or more; North American and trunk forms 9+. */
const PHONE_DIGITS_WITH_PLUS = 8
const PHONE_DIGITS = 9
/** The most separators between two digit groups of a phone number: `) ` in `(415) 555`. */
const PHONE_GAP = 2
/** The shortest key: Slack's `xoxb-` and 10 characters; token runs need 16. */
const API_KEY_RUN = 15

/**
 * The kinds of `mask` that may match somewhere in `text`:
 * - email: an `@`;
 * - phone: 9 digits in groups separated by at most two of `[ .()/-]`, with a separator between
 *   two of them (no national form is a bare run), or a `+` and 8;
 * - card: 13 digits in one cluster that no word character touches (findCards skips a cluster
 *   glued to a word: a digest, a UUID, an IBAN); ssn: 9 digits and two joins in one (a cluster:
 *   digits joined by single spaces or dashes, as `\d{3}(?:[ -]?\d){10}` and
 *   `\d{3}[ -]\d{2}[ -]\d{4}` need);
 * - iban: two capitals then two digits (`DE89`);
 * - ip: 4 digits and 3 dots (IPv4), or 3 colons or a `::` (IPv6: eight groups, or fewer
 *   around `::`, so a time of day is none);
 * - api_key: a run of 15 key characters with one that is not hex (digests, commits and UUIDs
 *   are never keys);
 * - jwt: `eyJ`; private_key: `-----` (before `BEGIN `).
 */
export function possibleKinds(text: string, mask: KindMask = ALL_KINDS): KindMask {
  return scanText(text, mask) & ~MAY_HOLD_INVISIBLE
}

/**
 * {@link possibleKinds}, with {@link MAY_HOLD_INVISIBLE} added when `text` holds a character
 * that `stripInvisible` may change (never left out when it does): one pass for both.
 */
export function scanText(text: string, mask: KindMask): number {
  let digits = 0
  let dots = 0
  let colons = 0
  let doubleColon = false
  let at = false
  let plus = false
  let ibanSeed = false
  let jwtSeed = false
  let apiKeySeed = false
  let dashes = 0
  let maxDashes = 0
  // A card or SSN cluster: its digits and joins, and whether the last character joins it;
  // whether a word character touches it (then it is part of a code, never a card).
  let cluster = 0
  let joins = 0
  let clusterGlued = false
  let cardSeed = false
  let ssnSeed = false
  let joined = false
  // A phone cluster: its digits, the separators since its last digit (past the gap: none), and
  // whether it has had a separator between digits (every national form has one).
  let phone = 0
  let gap = PHONE_GAP + 1
  let phoneSeparated = false
  let phoneSeed = false
  let maxPhone = 0
  // Whether the previous character is a word character (`[A-Za-z_]`; a digit is tracked apart).
  let word = false
  let previousDigit = false
  let digitRun = 0
  let run = 0
  let runNotHex = false
  let invisible = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const k = c < 128 ? CLASS[c]! : highClass(c)
    if ((k & LETTER) !== 0) {
      // Past a letter nothing is joined, no phone group goes on, no dash run either.
      run++
      if ((k & NOT_HEX) !== 0) runNotHex = true
      if (run >= API_KEY_RUN && runNotHex) apiKeySeed = true
      if (previousDigit) clusterGlued = true
      previousDigit = joined = false
      word = true
      gap = PHONE_GAP + 1
      dashes = 0
      continue
    }
    if ((k & TOKEN) !== 0) {
      run++
      if ((k & NOT_HEX) !== 0) runNotHex = true
      if (run >= API_KEY_RUN && runNotHex) apiKeySeed = true
    } else {
      run = 0
      runNotHex = false
    }
    if ((k & DIGIT) !== 0) {
      digits++
      if (previousDigit) {
        // Two capitals, a digit, this digit (`DE89`).
        if (++digitRun === 2 && (classAt(text, i - 2) & classAt(text, i - 3) & UPPER) !== 0)
          ibanSeed = true
      } else {
        digitRun = 1
        if (!joined) {
          if (cluster >= CARD_CLUSTER_DIGITS && !clusterGlued) cardSeed = true
          cluster = joins = 0
          clusterGlued = word
        }
        if (gap > PHONE_GAP) {
          phone = 0
          phoneSeparated = false
        } else if (phone > 0) phoneSeparated = true
      }
      cluster++
      if (cluster >= SSN_CLUSTER_DIGITS && joins >= SSN_CLUSTER_JOINS) ssnSeed = true
      if (++phone > maxPhone) maxPhone = phone
      if (phone >= PHONE_DIGITS && phoneSeparated) phoneSeed = true
      gap = 0
      previousDigit = true
      joined = false
      word = false
      dashes = 0
      continue
    }
    // `_` and `J` are the word characters that are not a LETTER.
    const wordChar = c === 95 || c === 74
    if (wordChar && previousDigit) clusterGlued = true
    word = wordChar
    joined = previousDigit && (k & JOIN) !== 0
    if (joined) joins++
    gap = (k & PHONE_SEP) !== 0 ? gap + 1 : PHONE_GAP + 1
    previousDigit = false
    if ((k & MARK) === 0) {
      dashes = 0
      if ((k & INVISIBLE) !== 0) invisible = true
      continue
    }
    if (c === 45) {
      if (++dashes > maxDashes) maxDashes = dashes
      continue
    }
    dashes = 0
    if (c === 46) dots++
    else if (c === 58) {
      if (text.charCodeAt(i - 1) === 58) doubleColon = true
      colons++
    } else if (c === 64) at = true
    else if (c === 43) plus = true
    else if (c === 74 && text.charCodeAt(i - 1) === 121 && text.charCodeAt(i - 2) === 101)
      jwtSeed = true // e y J
  }
  if (cluster >= CARD_CLUSTER_DIGITS && !clusterGlued) cardSeed = true
  let may = 0
  if (at) may |= KIND_BIT.email
  if (phoneSeed || (plus && maxPhone >= PHONE_DIGITS_WITH_PLUS)) may |= KIND_BIT.phone
  if (cardSeed) may |= KIND_BIT.card
  if (ibanSeed) may |= KIND_BIT.iban
  if (ssnSeed) may |= KIND_BIT.ssn
  if ((digits >= 4 && dots >= 3) || colons >= 3 || doubleColon) may |= KIND_BIT.ip
  if (apiKeySeed) may |= KIND_BIT.api_key
  if (jwtSeed) may |= KIND_BIT.jwt
  if (maxDashes >= 5) may |= KIND_BIT.private_key
  return (may & mask) | (invisible ? MAY_HOLD_INVISIBLE : 0)
}

/** The class of the character at `i`; 0 outside the text or past ASCII. */
function classAt(text: string, i: number): number {
  const c = text.charCodeAt(i)
  return c < 128 ? CLASS[c]! : 0
}
