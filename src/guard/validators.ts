/**
 * Check-digit and range validators behind the detectors. Each takes the candidate's characters
 * (separators already removed where noted) and answers yes or no; none allocates per character.
 *
 * @module
 */
import { getCountrySpecifications, isValidIBAN } from 'ibantools'

/** Luhn (mod 10) over a string of ASCII digits; false for anything else or an empty string. */
export function luhnValid(digits: string): boolean {
  if (digits.length === 0) return false
  let sum = 0
  let double = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (d < 0 || d > 9) return false
    if (double) {
      d *= 2
      if (d > 9) d -= 9
    }
    sum += d
    double = !double
  }
  return sum % 10 === 0
}

/**
 * Whether a digit string of this length starts like a card network's number (IIN ranges of
 * Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). Luhn alone passes one
 * random number in ten; the prefix rule is what keeps millisecond timestamps (`17…`) and
 * snowflake ids (`1…`) from being cards.
 */
export function cardPrefixValid(digits: string): boolean {
  const n = digits.length
  const p2 = Number(digits.slice(0, 2))
  const p3 = Number(digits.slice(0, 3))
  const p4 = Number(digits.slice(0, 4))
  switch (digits[0]) {
    case '4': // Visa
      return n === 13 || n === 16 || n === 19
    case '2': // Mastercard 2-series
      return n === 16 && p4 >= 2221 && p4 <= 2720
    case '5':
      if (p2 >= 51 && p2 <= 55) return n === 16 // Mastercard
      return n >= 13 && n <= 19 && (p2 === 50 || (p2 >= 56 && p2 <= 58)) // Maestro
    case '3':
      if (p2 === 34 || p2 === 37) return n === 15 // Amex
      if (p4 >= 3528 && p4 <= 3589) return n >= 16 && n <= 19 // JCB
      if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 && n <= 19 // Diners
      return false
    case '6': // Discover, UnionPay, Maestro 6x
      return n >= 16 && n <= 19
    default:
      return false
  }
}

/** A card number: 13–19 digits, a network's prefix for that length, and Luhn. */
export function cardValid(digits: string): boolean {
  return digits.length >= 13 && digits.length <= 19 && cardPrefixValid(digits) && luhnValid(digits)
}

/**
 * A US Social Security number's three parts are in issued ranges: area not 000, 666 or
 * 900–999; group not 00; serial not 0000 (SSA, "SSN randomization", 2011).
 */
export function ssnValid(area: string, group: string, serial: string): boolean {
  const a = Number(area)
  return (
    area.length === 3 &&
    group.length === 2 &&
    serial.length === 4 &&
    a !== 0 &&
    a !== 666 &&
    a < 900 &&
    group !== '00' &&
    serial !== '0000'
  )
}

const IBAN_SPECS = getCountrySpecifications()

/** The length of an IBAN of this country (ISO 13616 registry), or undefined for none. */
export function ibanLength(country: string): number | undefined {
  return IBAN_SPECS[country]?.chars ?? undefined
}

/**
 * An IBAN in electronic form (no spaces, upper case): known country, that country's length
 * and BBAN structure, and check digits that make the mod-97 remainder 1 (ibantools does all
 * three).
 */
export function ibanValid(compact: string): boolean {
  return isValidIBAN(compact)
}

const counts = new Uint32Array(128)

/** Shannon entropy of an ASCII string in bits per character (0 for ""). Non-ASCII counts as one symbol. */
export function shannonEntropy(text: string): number {
  const n = text.length
  if (n === 0) return 0
  counts.fill(0)
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    counts[c < 128 ? c : 127]!++
  }
  let bits = 0
  for (let c = 0; c < 128; c++) {
    const k = counts[c]!
    if (k > 0) {
      const p = k / n
      bits -= p * Math.log2(p)
    }
  }
  return bits
}
