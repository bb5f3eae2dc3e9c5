/**
 * Payment cards, IBANs and US Social Security numbers.
 *
 * - card: 13–19 digits, compact or grouped (groups of 3–8) by one kind of separator, single
 *   spaces or dashes; a card network's prefix for that length; Luhn. Digits inside a longer
 *   run (also a longer run grouped the same way) or after a decimal point are not a card.
 * - iban: two upper-case letters, two check digits and the BBAN, compact or grouped in fours by
 *   single spaces; the country's length and BBAN structure and the mod-97 check (ibantools).
 * - ssn: `AAA-GG-SSSS` or `AAA GG SSSS`, in issued ranges (see {@link ssnValid}).
 *
 * @module
 */
import type { Detection } from './kinds.js'
import { cardValid, ibanLength, ibanValid, ssnValid } from './validators.js'

/**
 * Where a card may be: 13 digits, maybe with single separators, the first three together (a
 * card's first group has at least three). Each such place is widened to
 * its whole cluster (digit runs joined by single spaces or dashes) and the cluster is read
 * once, so a megabyte of digits is one cluster and one pass. Not after a digit or a decimal
 * point: JSON floats have long fractions, and none is a card.
 */
const CARD_SEED = /(?<![\d.])\d{3}(?:[ -]?\d){10}/g

export function findCards(text: string, out: Detection[]): void {
  CARD_SEED.lastIndex = 0
  for (let m = CARD_SEED.exec(text); m !== null; m = CARD_SEED.exec(text)) {
    const end = cardsInCluster(text, clusterStart(text, m.index), out)
    CARD_SEED.lastIndex = Math.max(end, m.index + 1)
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57
}

function isSeparator(c: number): boolean {
  return c === 32 || c === 45 // space, dash
}

function clusterStart(text: string, i: number): number {
  let start = i
  for (;;) {
    if (isDigit(text.charCodeAt(start - 1))) start--
    else if (isSeparator(text.charCodeAt(start - 1)) && isDigit(text.charCodeAt(start - 2)))
      start -= 2
    else return start
  }
}

/**
 * The cards in the cluster starting at `start`, as a person writes them: one run of 13–19
 * digits, or a chain of groups of 3–8 digits joined by one kind of separator, 13–19 digits in
 * all. A chain is maximal: `1234 4111 1111 1111 1111 5678` is one 24-digit chain, not a card,
 * while `12 4111 1111 1111 1111 12/29` holds one. A run joined by a dash to more digits is a
 * compound id (`12-4111111111111111`). Read group by group without storing them, so a
 * megabyte of `4 4 4 …` costs no memory. Returns where the cluster ends.
 */
function cardsInCluster(text: string, start: number, out: Detection[]): number {
  let end = start
  for (;;) {
    while (isDigit(text.charCodeAt(end))) end++
    if (isSeparator(text.charCodeAt(end)) && isDigit(text.charCodeAt(end + 1))) end++
    else break
  }
  // A cluster glued to a word is part of a code (`DE95 4111 1111 1111 1111 00`, an IBAN);
  // a group after `.` or `+`, or before `.` and a digit, belongs to that number.
  const before = text.charCodeAt(start - 1)
  const after = text.charCodeAt(end)
  if (isWordChar(before) || isWordChar(after)) return end
  const firstUsable = before === 46 || before === 43 ? 1 : 0
  let lastStart = end
  while (lastStart > start && isDigit(text.charCodeAt(lastStart - 1))) lastStart--
  const lastUsable = !(after === 46 && isDigit(text.charCodeAt(end + 1)))

  let chainFrom = 0
  let chainTo = 0
  let chainDigits = 0
  let chainGroups = 0
  let chainSep = -1
  const flush = () => {
    if (chainGroups >= 2 && chainDigits >= 13 && chainDigits <= 19)
      pushCard(text, chainFrom, chainTo, out)
    chainGroups = 0
  }
  let prevSep = -1
  for (let i = start, g = 0; i < end; g++) {
    const from = i
    while (i < end && isDigit(text.charCodeAt(i))) i++
    const to = i
    const sep = i < end ? text.charCodeAt(i++) : -1
    const usable = g >= firstUsable && (lastUsable || from !== lastStart)
    const size = to - from
    if (usable && size >= 13 && size <= 19 && prevSep !== 45 && sep !== 45)
      pushCard(text, from, to, out)
    const fits = usable && size >= 3 && size <= 8
    if (fits && chainGroups > 0 && prevSep === chainSep) {
      chainTo = to
      chainDigits += size
      chainGroups++
    } else {
      flush()
      if (fits) {
        chainFrom = from
        chainTo = to
        chainDigits = size
        chainGroups = 1
        chainSep = sep
      }
    }
    prevSep = sep
  }
  flush()
  return end
}

function pushCard(text: string, start: number, end: number, out: Detection[]): void {
  let digits = ''
  for (let i = start; i < end; i++) if (isDigit(text.charCodeAt(i))) digits += text[i]
  if (cardValid(digits)) out.push({ kind: 'card', start, end })
}

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95
}

const IBAN =
  /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,8}(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])/g

export function findIbans(text: string, out: Detection[]): void {
  IBAN.lastIndex = 0
  for (let m = IBAN.exec(text); m !== null; m = IBAN.exec(text)) {
    const candidate = m[0]
    const length = ibanLength(candidate.slice(0, 2))
    if (length === undefined) continue
    // A grouped IBAN may be followed by a word that looks like one more group ("… 7034 EURO"):
    // cut at the country's length, which must fall between groups.
    let end = 0
    let chars = 0
    while (end < candidate.length && chars < length) {
      if (candidate[end] !== ' ') chars++
      end++
    }
    if (chars < length || (end < candidate.length && candidate[end] !== ' ')) continue
    if (ibanValid(candidate.slice(0, end).replaceAll(' ', '')))
      out.push({ kind: 'iban', start: m.index, end: m.index + end })
  }
}

const SSN = /(?<![\w-])(\d{3})([ -])(\d{2})\2(\d{4})(?![\w-]|\.\d)/g

export function findSsns(text: string, out: Detection[]): void {
  SSN.lastIndex = 0
  for (let m = SSN.exec(text); m !== null; m = SSN.exec(text)) {
    const end = m.index + m[0].length
    // `1 234 56 7890`: the spaced form inside a longer spaced run of digits.
    const spacedBefore = text[m.index - 1] === ' ' && isDigit(text.charCodeAt(m.index - 2))
    const spacedAfter = text[end] === ' ' && isDigit(text.charCodeAt(end + 1))
    if (m[2] === ' ' && (spacedBefore || spacedAfter)) continue
    if (ssnValid(m[1]!, m[3]!, m[4]!)) out.push({ kind: 'ssn', start: m.index, end })
  }
}
