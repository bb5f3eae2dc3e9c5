/**
 * Every length and threshold of the detectors at N and N+1 (or N−1): what is documented in
 * the module comments and docs/guardrails.md is what detect() does.
 */
import { describe, expect, it } from 'vitest'
import {
  CONTEXT_MIN_ENTROPY_RATIO,
  CONTEXT_MIN_LENGTH,
  MAX_TOKEN_LENGTH,
  type PiiKind,
  STANDALONE_MIN_ENTROPY_RATIO,
  STANDALONE_MIN_LENGTH,
  detect,
  shannonEntropy,
} from '../../src/guard/index.js'

/** Deterministic base62 (mulberry32), so the test reads the same token on every run. */
function base62(length: number, seed: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  let a = seed >>> 0
  let out = ''
  while (out.length < length) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out += alphabet[((t ^ (t >>> 14)) >>> 0) % 62]
  }
  return out
}

function found(kind: PiiKind, text: string): string[] {
  return detect(text, new Set([kind])).map((d) => text.slice(d.start, d.end))
}

describe('email limits', () => {
  it('takes a local part of 64 characters, not 65', () => {
    const local64 = 'a'.repeat(64)
    expect(found('email', `${local64}@example.com`)).toEqual([`${local64}@example.com`])
    expect(found('email', `a${local64}@example.com`)).toEqual([])
  })

  it('takes a domain label of 63 characters, not 64', () => {
    const label = 'b'.repeat(63)
    expect(found('email', `x@${label}.com`)).toEqual([`x@${label}.com`])
    expect(found('email', `x@b${label}.com`)).toEqual([])
  })

  it('takes a top-level domain of 2 letters, not 1', () => {
    expect(found('email', 'x@example.io')).toEqual(['x@example.io'])
    expect(found('email', 'x@example.i')).toEqual([])
  })
})

describe('phone limits', () => {
  it('takes 8 to 15 digits after +, not 7 or 16', () => {
    expect(found('phone', 'tel +4930123456')).toEqual(['+4930123456']) // 12
    expect(found('phone', 'tel +49301234')).toEqual(['+49301234']) // 8
    expect(found('phone', 'tel +4930123')).toEqual([]) // 7
    expect(found('phone', 'tel +493012345678901')).toEqual(['+493012345678901']) // 15
    expect(found('phone', 'tel +4930123456789012')).toEqual([]) // 16
  })

  it('takes 9 to 12 digits after a trunk 0, not 8 or 13', () => {
    expect(found('phone', 'tel 030 123456')).toEqual(['030 123456']) // 9
    expect(found('phone', 'tel 030 12345')).toEqual([]) // 8
    expect(found('phone', 'tel 0301 23456789')).toEqual(['0301 23456789']) // 12
    expect(found('phone', 'tel 03012 23456789')).toEqual([]) // 13
  })

  it('takes North American area and exchange codes from 2, not 1 or 0', () => {
    expect(found('phone', 'tel 212-255-0100')).toEqual(['212-255-0100'])
    expect(found('phone', 'tel 112-255-0100')).toEqual([])
    expect(found('phone', 'tel 212-155-0100')).toEqual([])
    expect(found('phone', 'tel (212) 055-0100')).toEqual([])
  })

  it('stops at the number: an expiry or a count after it is not part of it', () => {
    expect(found('phone', '192.0.2.1 415-555-2671 12 times')).toEqual(['415-555-2671'])
    expect(found('phone', 'call 12 415 555 2671')).toEqual([])
  })
})

describe('card limits', () => {
  it('takes 13 to 19 digits, compact or grouped', () => {
    expect(found('card', 'card 4222222222222')).toEqual(['4222222222222'])
    expect(found('card', 'card 4000000000000000006')).toEqual(['4000000000000000006'])
    expect(found('card', 'card 4000 0000 0000 0000 006')).toEqual(['4000 0000 0000 0000 006'])
  })

  it('takes groups of 3 to 8 digits, not 2 or 9', () => {
    expect(found('card', 'card 378 2822 4631 0005')).toEqual(['378 2822 4631 0005']) // 3-4-4-4
    expect(found('card', 'card 37 82822 4631 0005')).toEqual([]) // 2-5-4-4
    expect(found('card', 'card 41111111 11111111')).toEqual(['41111111 11111111']) // 8-8
    expect(found('card', 'card 411111111 1111111')).toEqual([]) // 9-7
  })

  it('is not a card when the grouped run goes on', () => {
    expect(found('card', '4111 1111 1111 1111')).toEqual(['4111 1111 1111 1111'])
    expect(found('card', '4111 1111 1111 1111 1111')).toEqual([])
    expect(found('card', '1234 4111 1111 1111 1111')).toEqual([])
  })
})

describe('ip limits', () => {
  it('takes octets up to 255, not 256', () => {
    expect(found('ip', 'host 255.255.255.255')).toEqual(['255.255.255.255'])
    expect(found('ip', 'host 255.255.255.256')).toEqual([])
  })

  it('takes eight IPv6 groups, not nine', () => {
    expect(found('ip', 'h 2001:db8:0:0:0:0:0:1')).toEqual(['2001:db8:0:0:0:0:0:1'])
    expect(found('ip', 'h 2001:db8:0:0:0:0:0:1:2')).toEqual([])
  })

  it('takes two non-empty IPv6 groups, not one', () => {
    expect(found('ip', 'h 1::2')).toEqual(['1::2'])
    expect(found('ip', 'h ::2')).toEqual([])
  })
})

describe('api_key limits', () => {
  // 16 symbols, each twice: exactly 4 bits per character, 0.8 of log2(32).
  const even32 = 'G1h2J3k4M5n6P7q8' + 'q8P7n6M5k4J3h2G1'

  it(`takes standalone tokens of ${STANDALONE_MIN_LENGTH} characters, not ${STANDALONE_MIN_LENGTH - 1}`, () => {
    expect(STANDALONE_MIN_LENGTH).toBe(32)
    expect(found('api_key', `log ${even32} end`)).toEqual([even32])
    expect(found('api_key', `log ${even32.slice(1)} end`)).toEqual([])
  })

  it(`takes standalone entropy of ${STANDALONE_MIN_ENTROPY_RATIO} of the most, not less`, () => {
    expect(shannonEntropy(even32) / Math.log2(32)).toBe(STANDALONE_MIN_ENTROPY_RATIO)
    const uneven = `${even32.slice(0, -1)}q` // one symbol thrice, one once
    expect(shannonEntropy(uneven) / Math.log2(32)).toBeLessThan(STANDALONE_MIN_ENTROPY_RATIO)
    expect(found('api_key', `log ${uneven} end`)).toEqual([])
  })

  it(`takes tokens of ${CONTEXT_MIN_LENGTH} characters after a secret's name, not ${CONTEXT_MIN_LENGTH - 1}`, () => {
    const token16 = 'G1h2J3k4G1h2J3k4'
    expect(found('api_key', `token: ${token16}`)).toEqual([token16])
    expect(found('api_key', `token: ${token16.slice(1)}`)).toEqual([])
    // Without the name the same token is too short to stand alone.
    expect(found('api_key', `value: ${token16}`)).toEqual([])
  })

  it(`takes entropy above ${CONTEXT_MIN_ENTROPY_RATIO} of the most after a secret's name, not below`, () => {
    const above = 'G1h2J3k4G1h2J3k4' // 8 symbols × 2: 3 bits, 0.75 of log2(16)
    const below = 'G1h2J3kG1h2J3kG1' // 7 symbols, 3+3+2×5: 2.78 bits, 0.695
    expect(shannonEntropy(above) / 4).toBeGreaterThanOrEqual(CONTEXT_MIN_ENTROPY_RATIO)
    expect(shannonEntropy(below) / 4).toBeLessThan(CONTEXT_MIN_ENTROPY_RATIO)
    expect(found('api_key', `password=${above}`)).toEqual([above])
    expect(found('api_key', `password=${below}`)).toEqual([])
  })

  it(`takes tokens of ${MAX_TOKEN_LENGTH} characters, not ${MAX_TOKEN_LENGTH + 1}`, () => {
    const long = base62(MAX_TOKEN_LENGTH, 7)
    expect(long).toHaveLength(MAX_TOKEN_LENGTH)
    expect(found('api_key', `secret: ${long}`)).toEqual([long])
    expect(found('api_key', `secret: ${long}G`)).toEqual([])
  })
})
