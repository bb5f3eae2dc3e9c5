/**
 * The check-digit and range validators at their boundaries: Luhn, card prefixes and lengths,
 * IBAN mod-97 and length, SSN ranges, Shannon entropy.
 */
import { describe, expect, it } from 'vitest'
import { cardValid, ibanValid, luhnValid, shannonEntropy, ssnValid } from '../../src/guard/index.js'

describe('luhnValid', () => {
  it('accepts numbers whose Luhn sum is a multiple of 10, and only those', () => {
    expect(luhnValid('4111111111111111')).toBe(true)
    // Each other last digit changes the sum by 1–9: none is valid.
    for (let d = 2; d <= 9; d++) expect(luhnValid(`411111111111111${d}`)).toBe(false)
    expect(luhnValid('4111111111111110')).toBe(false)
    expect(luhnValid('0')).toBe(true)
    expect(luhnValid('18')).toBe(true)
    expect(luhnValid('19')).toBe(false)
  })

  it('doubles every second digit from the right, subtracting 9 past 9', () => {
    // 5 doubled is 10 → 1; 59: 1 + 9 = 10.
    expect(luhnValid('59')).toBe(true)
    expect(luhnValid('95')).toBe(false)
  })

  it('rejects empty strings and anything that is not ASCII digits', () => {
    expect(luhnValid('')).toBe(false)
    expect(luhnValid('4111 1111 1111 1111')).toBe(false)
    expect(luhnValid('41111111111111a1')).toBe(false)
    expect(luhnValid('٤١١١')).toBe(false)
  })
})

describe('cardValid', () => {
  it('takes 13 to 19 digits, not 12 or 20', () => {
    expect(cardValid('4222222222222')).toBe(true) // 13, Visa
    expect(cardValid('422222222222')).toBe(false) // 12
    expect(cardValid('4000000000000000006')).toBe(true) // 19, Visa
    expect(cardValid('40000000000000000002')).toBe(false) // 20 (Luhn-valid)
    expect(luhnValid('40000000000000000002')).toBe(true)
  })

  it("checks the network's length for its prefix", () => {
    expect(cardValid('378282246310005')).toBe(true) // Amex, 15
    expect(cardValid('3782822463100003')).toBe(false) // Amex prefix, 16 digits (Luhn-valid)
    expect(luhnValid('3782822463100003')).toBe(true)
    expect(cardValid('411111111111116')).toBe(false) // Visa prefix, 15 digits (Luhn-valid)
    expect(luhnValid('411111111111116')).toBe(true)
  })

  it('checks Mastercard 2-series at both ends of 2221–2720', () => {
    expect(cardValid('2221000000000009')).toBe(true)
    expect(cardValid('2220990000000002')).toBe(false)
    expect(cardValid('2720990000000007')).toBe(true)
    expect(cardValid('2721000000000004')).toBe(false)
    for (const n of ['2220990000000002', '2721000000000004']) expect(luhnValid(n)).toBe(true)
  })

  it('rejects prefixes no network issues: 0, 1, 7, 8, 9 (timestamps, snowflake ids)', () => {
    for (const n of ['1733560000007', '7111111111111114', '8111111111111112', '9111111111111110']) {
      expect(luhnValid(n)).toBe(true)
      expect(cardValid(n)).toBe(false)
    }
  })

  it('fails a number that fails Luhn whatever its prefix', () => {
    expect(cardValid('4111111111111112')).toBe(false)
    expect(cardValid('5555555555554445')).toBe(false)
  })
})

describe('ibanValid', () => {
  it('accepts the check digits that make the mod-97 remainder 1, and no neighbour', () => {
    expect(ibanValid('DE89370400440532013000')).toBe(true)
    expect(ibanValid('DE88370400440532013000')).toBe(false)
    expect(ibanValid('DE90370400440532013000')).toBe(false)
    expect(ibanValid('GB82WEST12345698765432')).toBe(true)
    expect(ibanValid('GB82WEST12345698765433')).toBe(false)
  })

  it("takes exactly the country's length", () => {
    expect(ibanValid('NO9386011117947')).toBe(true) // 15, the shortest
    expect(ibanValid('NO938601111794')).toBe(false)
    expect(ibanValid('NO93860111179470')).toBe(false)
  })

  it('rejects unknown countries, lower case and separators', () => {
    expect(ibanValid('XX89370400440532013000')).toBe(false)
    expect(ibanValid('de89370400440532013000')).toBe(false)
    expect(ibanValid('DE89 3704 0044 0532 0130 00')).toBe(false)
  })
})

describe('ssnValid', () => {
  it('rejects area 000, 666 and 900–999, and nothing next to them', () => {
    expect(ssnValid('000', '12', '3456')).toBe(false)
    expect(ssnValid('001', '12', '3456')).toBe(true)
    expect(ssnValid('665', '12', '3456')).toBe(true)
    expect(ssnValid('666', '12', '3456')).toBe(false)
    expect(ssnValid('667', '12', '3456')).toBe(true)
    expect(ssnValid('899', '12', '3456')).toBe(true)
    expect(ssnValid('900', '12', '3456')).toBe(false)
    expect(ssnValid('999', '12', '3456')).toBe(false)
  })

  it('rejects group 00 and serial 0000, not 01 and 0001', () => {
    expect(ssnValid('123', '00', '4567')).toBe(false)
    expect(ssnValid('123', '01', '4567')).toBe(true)
    expect(ssnValid('123', '45', '0000')).toBe(false)
    expect(ssnValid('123', '45', '0001')).toBe(true)
  })

  it('takes parts of 3, 2 and 4 digits only', () => {
    expect(ssnValid('12', '45', '6789')).toBe(false)
    expect(ssnValid('123', '4', '6789')).toBe(false)
    expect(ssnValid('123', '45', '67890')).toBe(false)
  })
})

describe('shannonEntropy', () => {
  it('is 0 for one repeated symbol and for the empty string', () => {
    expect(shannonEntropy('')).toBe(0)
    expect(shannonEntropy('aaaaaaaa')).toBe(0)
  })

  it('is log2(n) bits for n equally frequent symbols', () => {
    expect(shannonEntropy('ab')).toBe(1)
    expect(shannonEntropy('abcdabcd')).toBe(2)
    expect(shannonEntropy('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef')).toBe(5)
  })
})
