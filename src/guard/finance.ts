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

const CARD = /(?<![\w.+]|\d[ -])\d(?:[ -]?\d){12,18}(?!\w|[ -]\d|\.\d)/g

export function findCards(text: string, out: Detection[]): void {
  CARD.lastIndex = 0
  for (let m = CARD.exec(text); m !== null; m = CARD.exec(text)) {
    const digits = compactCard(m[0])
    if (digits !== undefined && cardValid(digits))
      out.push({ kind: 'card', start: m.index, end: m.index + m[0].length })
  }
}

/** The digits of a card candidate, or undefined when its grouping is not one a person writes. */
function compactCard(candidate: string): string | undefined {
  let sep = ''
  let group = 0
  let digits = ''
  for (const c of candidate) {
    if (c === ' ' || c === '-') {
      if (sep === '') sep = c
      else if (c !== sep) return undefined
      if (group < 3 || group > 8) return undefined
      group = 0
    } else {
      digits += c
      group++
    }
  }
  if (sep !== '' && (group < 3 || group > 8)) return undefined
  return digits
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

const SSN = /(?<![\w-]|\d[ ])(\d{3})([ -])(\d{2})\2(\d{4})(?![\w-]|[ ]\d|\.\d)/g

export function findSsns(text: string, out: Detection[]): void {
  SSN.lastIndex = 0
  for (let m = SSN.exec(text); m !== null; m = SSN.exec(text)) {
    if (ssnValid(m[1]!, m[3]!, m[4]!))
      out.push({ kind: 'ssn', start: m.index, end: m.index + m[0].length })
  }
}
