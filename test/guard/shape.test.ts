/**
 * possibleKinds(): the one pass that rules kinds out before the finders run. It may let a kind
 * through that then finds nothing, never the reverse: detect() must find exactly what every
 * finder run on the whole text finds. Checked on the labelled corpus, on every window cut from
 * it and on seeded splices of its texts, then each condition at its bound (N passes, N − 1 does
 * not).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { detect, runFinders } from '../../src/guard/detect.js'
import { PII_KINDS, type PiiKind } from '../../src/guard/kinds.js'
import {
  ALL_KINDS,
  KIND_BIT,
  MAY_HOLD_INVISIBLE,
  possibleKinds,
  scanText,
} from '../../src/guard/shape.js'
import { hasInvisible } from '../../src/text.js'
import { mulberry32 } from '../helpers/prng.js'

const TEXTS: string[] = readFileSync(
  new URL('../fixtures/pii/corpus.jsonl', import.meta.url),
  'utf8',
)
  .trim()
  .split('\n')
  .map((line) => (JSON.parse(line) as { text: string }).text)

function kindsOf(mask: number): PiiKind[] {
  return PII_KINDS.filter((kind) => (mask & KIND_BIT[kind]) !== 0)
}

/** Texts whose detect() differs from the finders run without the pass. */
function disagreements(texts: Iterable<string>): string[] {
  const bad: string[] = []
  for (const text of texts)
    if (JSON.stringify(detect(text)) !== JSON.stringify(runFinders(text, ALL_KINDS))) bad.push(text)
  return bad
}

describe('possibleKinds() never rules out a kind that matches', () => {
  it('on every corpus text, and lets each expected kind through', () => {
    expect(disagreements(TEXTS)).toEqual([])
    const rows = readFileSync(new URL('../fixtures/pii/corpus.jsonl', import.meta.url), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { text: string; expect: Array<{ kind: PiiKind }> })
    for (const row of rows)
      for (const e of row.expect) expect(kindsOf(possibleKinds(row.text))).toContain(e.kind)
  })

  it('on every window of every corpus text (values cut at their edges)', () => {
    const windows = function* () {
      for (const text of TEXTS)
        for (let start = 0; start < text.length; start += 3)
          for (const length of [8, 13, 16, 24, 40]) yield text.slice(start, start + length)
    }
    expect(disagreements(windows())).toEqual([])
  })

  it('on 3,000 seeded splices of corpus texts', () => {
    const rand = mulberry32(12)
    const pick = () => TEXTS[Math.floor(rand() * TEXTS.length)]!
    const cut = (s: string) => s.slice(Math.floor(rand() * s.length))
    const glue = [' ', '', '-', '.', ':', '\n', '"', '+', '/', 'é']
    const splices = Array.from({ length: 3000 }, () => {
      let text = ''
      for (let parts = 1 + Math.floor(rand() * 3); parts > 0; parts--)
        text += cut(pick()) + glue[Math.floor(rand() * glue.length)]!
      return text
    })
    expect(disagreements(splices)).toEqual([])
  })
})

describe('possibleKinds() at each bound', () => {
  it.each([
    ['email: an @', 'a@b', 'ab', 'email'],
    ['phone: 9 digits', 'call 030 123456', 'call 030 12345', 'phone'],
    ['phone: groups apart by two separators at most', '(415) 555-2671', '(415)  555-2671', 'phone'],
    ['phone: groups apart by separators only', '030/123456', '030x123456', 'phone'],
    ['phone: a + and 8 digits', '+49 30 1234', '+49 30 123', 'phone'],
    ['phone: a separator between groups, without +', 'call 030 123456', 'call 030123456', 'phone'],
    ['card: 13 digits in one cluster', '4222 2222 22222', '4222 2222 2222 x2', 'card'],
    [
      'card: a cluster joins by one space or dash only',
      '4222-2222-22222',
      '4222  2222 22222',
      'card',
    ],
    [
      'card: no word character just before the cluster',
      'ref 4222222222222',
      'ref_4222222222222',
      'card',
    ],
    ['card: no letter just before the cluster', 'id 4222222222222', 'id4222222222222', 'card'],
    ['card: no word character just after the cluster', '4222222222222 J', '4222222222222J', 'card'],
    ['ssn: 9 digits in one cluster', '123-45-6789', '123-45-678', 'ssn'],
    ['ssn: two joins in the cluster', '123-45-6789', '123-456789', 'ssn'],
    ['iban: two capitals, two digits', 'GB82', 'Gb82', 'iban'],
    ['ip: 4 digits and 3 dots', '1.2.3.4', '1.2.3', 'ip'],
    ['ip: a double colon', 'fe::', 'fe:a:', 'ip'],
    ['ip: 3 colons', 'a:b:c:d', '12:30:45', 'ip'],
    ['api_key: a run of 15 key characters', 'xoxb-1234567890', 'xoxb-123456789', 'api_key'],
    [
      'api_key: a run with a character that is not hex',
      'e3b0c44298fc1g4',
      'e3b0c44298fc1c4',
      'api_key',
    ],
    ['jwt: eyJ', 'eyJ', 'eyj', 'jwt'],
    ['private_key: five dashes', '-----BEGIN ', '----BEGIN ', 'private_key'],
  ] as const)('%s', (_, passes, fails, kind) => {
    expect(kindsOf(possibleKinds(passes))).toContain(kind)
    expect(kindsOf(possibleKinds(fails))).not.toContain(kind)
  })

  it('rules every kind out of prose, keys, ids, timestamps, versions, UUIDs and digests', () => {
    for (const text of [
      'Order shipped; customer asked about delivery windows.',
      'created',
      'cust-41',
      '2026-12-07T08:00:00.000Z',
      'v1.2.3',
      '00fb8673-8b42-4835-a84f-3e32248c1e89',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      // Digests whose digit runs are as long as a card or a phone number.
      'e7767958e291588fccb7ce724e9cf7579079249188229b46b154be8828c5f948',
      '99bf4fac9d2f89263ddbaf9bf739cd3878247720',
    ])
      expect({ text, kinds: kindsOf(possibleKinds(text)) }).toEqual({ text, kinds: [] })
  })

  it('answers only within the mask it is given', () => {
    const text = 'bob@example.com 192.0.2.1'
    expect(kindsOf(possibleKinds(text))).toEqual(['email', 'ip'])
    expect(kindsOf(possibleKinds(text, KIND_BIT.ip))).toEqual(['ip'])
    expect(possibleKinds(text, 0)).toBe(0)
  })
})

describe('scanText() flags every character stripInvisible changes', () => {
  it('on every UTF-16 code unit alone and inside text, and on the tag block', () => {
    const missed: number[] = []
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c)
      for (const text of [ch, `ab ${ch}12`, `x@y.io${ch}`])
        if (hasInvisible(text) && (scanText(text, ALL_KINDS) & MAY_HOLD_INVISIBLE) === 0)
          missed.push(c)
    }
    expect(missed).toEqual([])
    for (let c = 0xe0000; c <= 0xe007f; c++)
      expect(scanText(`tag ${String.fromCodePoint(c)}`, 0) & MAY_HOLD_INVISIBLE).not.toBe(0)
    expect(scanText('plain text, an id 1234 and é', ALL_KINDS) & MAY_HOLD_INVISIBLE).toBe(0)
    expect(possibleKinds('\u200b')).toBe(0)
  })
})
