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
 * Where a card may be: 13 digits, maybe with single separators. Each such place is widened to
 * its whole cluster (digit runs joined by single spaces or dashes) and the cluster is read
 * once, so a megabyte of digits is one cluster and one pass. Not after a digit or a decimal
 * point: JSON floats have long fractions, and none is a card.
 */
const CARD_SEED = /(?<![\d.])\d(?:[ -]?\d){12}/g

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
 * compound id (`12-4111111111111111`). Returns where the cluster ends.
 */
function cardsInCluster(text: string, start: number, out: Detection[]): number {
  const groups: Array<[number, number]> = []
  let i = start
  for (;;) {
    const from = i
    while (isDigit(text.charCodeAt(i))) i++
    groups.push([from, i])
    if (isSeparator(text.charCodeAt(i)) && isDigit(text.charCodeAt(i + 1))) i++
    else break
  }
  const end = i
  // A cluster glued to a word is part of a code (`DE95 4111 1111 1111 1111 00`, an IBAN);
  // a group after `.` or `+`, or before `.` and a digit, belongs to that number.
  const before = text.charCodeAt(start - 1)
  const after = text.charCodeAt(end)
  if (isWordChar(before) || isWordChar(after)) return end
  const first = before === 46 || before === 43 ? 1 : 0
  const last = groups.length - (after === 46 && isDigit(text.charCodeAt(end + 1)) ? 1 : 0)
  const sepAfter = (g: number) => text.charCodeAt(groups[g]![1])
  for (let g = first; g < last; g++) {
    const [from, to] = groups[g]!
    const size = to - from
    const dashed =
      (g > 0 && sepAfter(g - 1) === 45) || (g < groups.length - 1 && sepAfter(g) === 45)
    if (size >= 13 && size <= 19 && !dashed) pushCard(text, from, to, out)
  }
  // Chains of 3–8-digit groups joined by the same separator.
  let g = first
  while (g < last) {
    const size = groups[g]![1] - groups[g]![0]
    if (size < 3 || size > 8) {
      g++
      continue
    }
    let h = g
    let digits = size
    const sep = g + 1 < groups.length ? sepAfter(g) : -1
    while (h + 1 < groups.length && sepAfter(h) === sep) {
      const next = groups[h + 1]![1] - groups[h + 1]![0]
      if (next < 3 || next > 8) break
      h++
      digits += next
    }
    if (h > g && h < last && digits >= 13 && digits <= 19)
      pushCard(text, groups[g]![0], groups[h]![1], out)
    g = h + 1
  }
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
