/**
 * No input makes detect() superlinear: each hostile 1 MiB string (the shapes that make a naive
 * regex backtrack or a naive scan restart) takes less than 20× the time of 1 MiB of benign
 * text, measured in the same test. A quadratic path would take minutes at this size.
 */
import { describe, expect, it } from 'vitest'
import { detect } from '../../src/guard/index.js'

const MIB = 1 << 20
const MAX_RATIO = 20

function fill(unit: string, length = MIB): string {
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length)
}

/** Deterministic bytes (xorshift32) for a base64 body that is the same on every run. */
function pseudoRandomBase64(length: number): string {
  const bytes = Buffer.alloc(Math.ceil((length * 3) / 4))
  let x = 0x9e3779b9
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bytes[i] = x & 0xff
  }
  return bytes.toString('base64').slice(0, length)
}

const BENIGN = fill(
  JSON.stringify({
    id: 48213,
    order: 'ORD-2026-000123',
    created: '2026-12-07T10:12:33.123Z',
    status: 'shipped',
    sha: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    version: '1.2.3',
    total: 129.95,
    note: 'The parcel left the warehouse at 09:30 and should arrive within two days.',
  }) + '\n',
)

const HOSTILE: Record<string, string> = {
  'a@a@a@…': fill('a@'),
  'a long local part then @': `${fill('a', MIB - 12)}@example.com`,
  'dotted labels after one @': `x@${fill('a.', MIB - 2)}`,
  '@ then dotted labels, repeated': fill('x@a.a.a.a.a.a.a.a.a.a1 '),
  'digits only': fill('1'),
  'digits and single spaces': fill('4 '),
  'digits and dashes': fill('41-'),
  'digit groups of four': fill('4111 '),
  'dots and digits (versions)': fill('1.'),
  'plus and digits': fill('+1'),
  'plus, digits, spaces': fill('+1 2 '),
  'parenthesised groups': fill('(415) '),
  'colons only': fill(':'),
  'hex and colons': fill('ab:'),
  'hex groups and ::': fill('1::'),
  'base64 in one run': pseudoRandomBase64(MIB),
  'base64 words': fill(`${pseudoRandomBase64(40)} `),
  'base64 with = inside': fill('A1b2C3d4E5f6G7h8=='),
  'eyJ repeated': fill('eyJ'),
  'eyJ segments and dots': fill('eyJhbGciOiJIUzI1NiJ9.'),
  'BEGIN lines, no END': fill('-----BEGIN PRIVATE KEY-----\n'),
  'one BEGIN, a MiB of body': `-----BEGIN RSA PRIVATE KEY-----\n${pseudoRandomBase64(MIB - 32)}`,
  'END lines only': fill('-----END PRIVATE KEY-----\n'),
  'IBAN-like groups': fill('DE89 '),
  'upper case and digits': fill('AB12'),
  'sk- prefixes': fill('sk-'),
  'secret names': fill('token: '),
}

function timeMs(text: string): number {
  // The least of three runs: the others measure the machine, not the code.
  let best = Number.POSITIVE_INFINITY
  for (let i = 0; i < 3; i++) {
    const start = performance.now()
    detect(text)
    best = Math.min(best, performance.now() - start)
  }
  return best
}

describe('detect() in linear time', () => {
  it(`scans each hostile 1 MiB input in under ${MAX_RATIO}× the time of 1 MiB of benign text`, () => {
    for (const text of Object.values(HOSTILE)) expect(text.length).toBeGreaterThanOrEqual(MIB - 32)
    detect(BENIGN) // warm up the JIT before timing anything
    const benignMs = timeMs(BENIGN)
    const slow = Object.entries(HOSTILE)
      .map(([name, text]) => ({ name, ratio: timeMs(text) / benignMs }))
      .filter((r) => r.ratio >= MAX_RATIO)
    expect(slow, `benign 1 MiB took ${benignMs.toFixed(1)} ms`).toEqual([])
  }, 120_000)
})
