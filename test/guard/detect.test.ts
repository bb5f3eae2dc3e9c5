/**
 * detect() against the labelled corpus (test/fixtures/pii/corpus.jsonl): precision and recall
 * per kind, exact spans, overlap resolution, the kinds filter, and selfTest().
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  type Detection,
  PII_KINDS,
  type PiiKind,
  detect,
  isPiiKind,
  selfTest,
} from '../../src/guard/index.js'

interface Row {
  text: string
  expect: Array<{ kind: PiiKind; value: string }>
  nearMissOf?: string
}

const CORPUS: Row[] = readFileSync(new URL('../fixtures/pii/corpus.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as Row)

const MIN_PRECISION = 0.95
const MIN_RECALL = 0.95
const MIN_CASES_PER_KIND = 15

function spans(text: string, kinds?: ReadonlySet<PiiKind>): string[] {
  return detect(text, kinds).map((d) => `${d.kind}:${text.slice(d.start, d.end)}`)
}

describe('the corpus', () => {
  it('has at least 15 true positives and 15 near misses per kind, each expected value in its text', () => {
    for (const kind of PII_KINDS) {
      const positives = CORPUS.flatMap((r) => r.expect).filter((e) => e.kind === kind).length
      const nearMisses = CORPUS.filter((r) => r.nearMissOf === kind).length
      expect({ kind, positives: positives >= MIN_CASES_PER_KIND }).toEqual({
        kind,
        positives: true,
      })
      expect({ kind, nearMisses: nearMisses >= MIN_CASES_PER_KIND }).toEqual({
        kind,
        nearMisses: true,
      })
    }
    const missing = CORPUS.flatMap((r) => r.expect.filter((e) => !r.text.includes(e.value)))
    expect(missing).toEqual([])
    for (const r of CORPUS) for (const e of r.expect) expect(isPiiKind(e.kind)).toBe(true)
  })
})

describe('detect() on the corpus', () => {
  it(`reaches precision ≥ ${MIN_PRECISION} and recall ≥ ${MIN_RECALL} for every kind`, () => {
    const counts = Object.fromEntries(PII_KINDS.map((k) => [k, { tp: 0, fp: 0, fn: 0 }])) as Record<
      PiiKind,
      { tp: number; fp: number; fn: number }
    >
    const mistakes: string[] = []
    for (const row of CORPUS) {
      const wanted = [...row.expect]
      for (const d of detect(row.text)) {
        const value = row.text.slice(d.start, d.end)
        const i = wanted.findIndex((w) => w.kind === d.kind && w.value === value)
        if (i === -1) {
          counts[d.kind].fp++
          mistakes.push(`FP ${d.kind} ${JSON.stringify(value)} in ${JSON.stringify(row.text)}`)
        } else {
          counts[d.kind].tp++
          wanted.splice(i, 1)
        }
      }
      for (const w of wanted) {
        counts[w.kind].fn++
        mistakes.push(`FN ${w.kind} ${JSON.stringify(w.value)} in ${JSON.stringify(row.text)}`)
      }
    }
    const table = PII_KINDS.map((k) => {
      const { tp, fp, fn } = counts[k]
      return { kind: k, tp, fp, fn, precision: tp / (tp + fp), recall: tp / (tp + fn) }
    })
    const report = [
      'kind         tp  fp  fn  precision  recall',
      ...table.map(
        (r) =>
          `${r.kind.padEnd(12)} ${String(r.tp).padStart(3)} ${String(r.fp).padStart(3)} ${String(r.fn).padStart(3)}  ${r.precision.toFixed(3).padStart(9)}  ${r.recall.toFixed(3).padStart(6)}`,
      ),
      ...mistakes,
    ].join('\n')
    const below = table.filter((r) => !(r.precision >= MIN_PRECISION && r.recall >= MIN_RECALL))
    expect(below, report).toEqual([])
  })

  it('returns non-overlapping detections sorted by start on every corpus text', () => {
    for (const row of CORPUS) {
      const found = detect(row.text)
      for (let i = 1; i < found.length; i++) {
        expect(found[i]!.start).toBeGreaterThanOrEqual(found[i - 1]!.end)
      }
    }
  })
})

describe('detect() spans', () => {
  it('gives exact UTF-16 offsets, end exclusive', () => {
    const text = 'Mail 📧 bob@example.com, call +44 20 7946 0958.'
    const at = text.indexOf('bob@')
    const plus = text.indexOf('+44')
    expect(detect(text)).toEqual([
      { kind: 'email', start: at, end: at + 'bob@example.com'.length },
      { kind: 'phone', start: plus, end: plus + '+44 20 7946 0958'.length },
    ])
    // The emoji is two UTF-16 code units: offsets are not code points.
    expect(at).toBe(8)
  })

  it('leaves punctuation around a value outside its span', () => {
    expect(spans('(bob@example.com).')).toEqual(['email:bob@example.com'])
    expect(spans('"4111-1111-1111-1111",')).toEqual(['card:4111-1111-1111-1111'])
    expect(spans('[192.0.2.1].')).toEqual(['ip:192.0.2.1'])
    expect(spans('addr 2001:db8::2: up')).toEqual(['ip:2001:db8::2'])
  })

  it('finds values at the very start and end of the text', () => {
    expect(detect('078-05-1120')).toEqual([{ kind: 'ssn', start: 0, end: 11 }])
    expect(detect('x 192.0.2.1')).toEqual([{ kind: 'ip', start: 2, end: 11 }])
  })

  it('returns nothing for empty or value-free text', () => {
    expect(detect('')).toEqual([])
    expect(detect('The quick brown fox jumps over the lazy dog.')).toEqual([])
  })

  it('ends a PEM block at its END line, or at the end of the base64 body when it was cut off', () => {
    const whole =
      '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----'
    expect(spans(`a\n${whole}\nb`)).toEqual([`private_key:${whole}`])
    const cut =
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\nNxJMYbGNsGpDw7'
    expect(spans(`${cut}\n\n[truncated]`)).toEqual([`private_key:${cut}`])
    // In a JSON string the newlines are the two characters \n; the span stops at the base64.
    const json = JSON.stringify({ key: `${cut}\n` })
    const d = detect(json)
    expect(d.map((x) => json.slice(x.start, x.end))).toEqual([JSON.stringify(cut).slice(1, -1)])
  })
})

describe('detect() context rules', () => {
  it('does not take a numbered section or a version for an IPv4 address', () => {
    expect(spans('see RFC 5890, section 2.3.2.3 and § 1.2.3.4')).toEqual([])
    expect(spans('version 1.2.3.4, build 10.0.0.1')).toEqual([])
    // "dev" ends in v but is no version marker.
    expect(spans('ip route add 10.0.0.0/8 dev eth0 via 10.0.0.1')).toEqual([
      'ip:10.0.0.0',
      'ip:10.0.0.1',
    ])
  })

  it('does not take an scp-style remote for an email address', () => {
    expect(spans('git clone git@github.com:acme/app.git')).toEqual([])
    expect(spans('mail git@example.com: it bounced')).toEqual(['email:git@example.com'])
  })

  it('does not take a BEGIN line without a body for a private key', () => {
    expect(spans('if (pem.indexOf("-----BEGIN PRIVATE KEY-----") !== 0) throw')).toEqual([])
    expect(spans('"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----"')).toEqual([])
  })
})

describe('detect() overlaps', () => {
  const jwt =
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'

  it('reports a JWT once, as jwt, not also its segments as api_key', () => {
    expect(spans(`Bearer ${jwt}`)).toEqual([`jwt:${jwt}`])
    // Asked for api_key alone, the signature segment is still not a key: it is a dotted part.
    expect(spans(`Bearer ${jwt}`, new Set(['api_key']))).toEqual([])
  })

  it('reports an IBAN, not the card number inside it', () => {
    // The BBAN of this valid IBAN starts with 4111111111111111, a Luhn-valid Visa number.
    for (const iban of ['DE95 4111 1111 1111 1111 00', 'DE95411111111111111100']) {
      expect(spans(`pay to ${iban}`)).toEqual([`iban:${iban}`])
      expect(spans(`pay to ${iban}`, new Set(['card']))).toEqual([])
    }
    // Outside an IBAN the same digits, then an expiry date, are a card.
    expect(spans('card 4111 1111 1111 1111 12/29', new Set(['card']))).toEqual([
      'card:4111 1111 1111 1111',
    ])
  })

  it('keeps the longer of two overlapping findings, then the more specific kind', () => {
    // The IPv4 tail of an IPv4-mapped IPv6 address is one address, not two.
    expect(spans('::ffff:192.0.2.128')).toEqual(['ip:::ffff:192.0.2.128'])
    // A private key's base64 lines are not api keys.
    const pem =
      '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgR7vQ2mPx9Tk4Lw8n\n-----END PRIVATE KEY-----'
    expect(spans(pem)).toEqual([`private_key:${pem}`])
  })

  it('reports a token inside a URL userinfo as api_key, not as an email', () => {
    const token = ['ghp', '_', 'R7vQ2mPx9Tk4Lw8nB3sYc6Jd1Hf5Gz0AeKuR7'].join('')
    expect(spans(`https://${token}@github.com/acme/app.git`)).toEqual([`api_key:${token}`])
  })
})

describe('detect() pre-checks (digits counted, length) never hide a match', () => {
  it.each([
    ['a card of 13 digits, the fewest', 'card 4222222222222 ok', 'card'],
    ['a phone of 8 digits, the fewest', 'call +49 30 1234 now', 'phone'],
    ['an SSN of 9 digits', 'ssn 123-45-6789', 'ssn'],
    ['an IPv4 address of 4 digits', 'ip 1.2.3.4 here', 'ip'],
    ['an IPv6 address without a digit', 'via fe::ab', 'ip'],
    ['an IBAN whose letters outnumber its digits', 'iban GB82 WEST 1234 5698 7654 32', 'iban'],
  ] as const)('%s', (_, text, kind) => {
    expect(detect(text).map((d) => d.kind)).toEqual([kind])
  })

  it('one digit fewer than a kind needs finds nothing of that kind', () => {
    expect(detect('card 422222222222 ok')).toEqual([])
    expect(detect('call +49 30 123 now')).toEqual([])
    expect(detect('ip 1.2.3 here')).toEqual([])
  })
})

describe('detect() kinds filter', () => {
  const text = 'bob@example.com 192.0.2.1 078-05-1120'

  it('finds only the kinds asked for', () => {
    expect(spans(text, new Set(['ip']))).toEqual(['ip:192.0.2.1'])
    expect(spans(text, new Set(['email', 'ssn']))).toEqual([
      'email:bob@example.com',
      'ssn:078-05-1120',
    ])
    expect(spans(text, new Set())).toEqual([])
  })

  it('finds every kind by default', () => {
    expect(spans(text)).toEqual(['email:bob@example.com', 'ip:192.0.2.1', 'ssn:078-05-1120'])
  })
})

describe('PII_KINDS and isPiiKind', () => {
  it('lists the nine kinds in the documented order, frozen', () => {
    expect(PII_KINDS).toEqual([
      'email',
      'phone',
      'card',
      'iban',
      'ssn',
      'ip',
      'api_key',
      'jwt',
      'private_key',
    ])
    expect(Object.isFrozen(PII_KINDS)).toBe(true)
  })

  it('recognises kind names and nothing else', () => {
    expect(isPiiKind('api_key')).toBe(true)
    expect(isPiiKind('apikey')).toBe(false)
    expect(isPiiKind('EMAIL')).toBe(false)
    expect(isPiiKind(undefined)).toBe(false)
  })
})

describe('selfTest()', () => {
  it('finds every kind and ignores every near miss', () => {
    expect(selfTest()).toEqual(
      PII_KINDS.map((kind) => ({ kind, found: true, nearMissIgnored: true })),
    )
  })

  it('runs only the kinds asked for, in the documented order', () => {
    expect(selfTest(new Set<PiiKind>(['jwt', 'card'])).map((r) => r.kind)).toEqual(['card', 'jwt'])
  })
})

// Detection is a plain object the tokeniser can build on; keep its shape exact.
const _shape: Detection = { kind: 'email', start: 0, end: 1 }
void _shape
