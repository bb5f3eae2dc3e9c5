import { describe, expect, it } from 'vitest'
import { PII_KINDS } from '../../src/config/index.js'
import { MemoryVault, PiiGuard, type PiiOptions } from '../../src/guard/index.js'
import { stripInvisibleJson } from '../../src/text.js'
import type { Json } from '../../src/types.js'

function guard(overrides: Partial<PiiOptions> = {}) {
  const options: PiiOptions = {
    mode: 'tokenize',
    detect: [...PII_KINDS],
    boundary: 'model',
    resolveFor: ['mail.send_email', 'crm.*'],
    ttlSeconds: 60,
    maxValuesPerSession: 100,
    maxValues: 1000,
    ...overrides,
  }
  return new PiiGuard(options, new MemoryVault(options))
}

describe('PiiGuard', () => {
  it('replaces values inside strings in place, in values and keys, and counts them', async () => {
    const g = guard()
    const out = await g.protect(
      { to: 'write to a@example.com or b@example.com', 'a@example.com': { seen: true } },
      's',
      [],
    )
    expect(out.value).toEqual({
      to: 'write to [EMAIL_1] or [EMAIL_2]',
      '[EMAIL_1]': { seen: true },
    })
    expect(out.counts).toEqual({ email: 3 })
  })

  it('redact mode replaces with the kind and keeps no vault; keys stay distinct', async () => {
    const options: PiiOptions = {
      mode: 'redact',
      detect: ['email'],
      boundary: 'model',
      resolveFor: [],
      ttlSeconds: 60,
      maxValuesPerSession: 100,
      maxValues: 1000,
    }
    const g = new PiiGuard(options)
    const out = await g.protect({ 'a@x.io': 1, 'b@x.io': 2, list: ['c@x.io'] }, 's', [])
    expect(out.value).toEqual({ '[EMAIL]': 1, '[EMAIL]#2': 2, list: ['[EMAIL]'] })
  })

  it('redacts rather than leaks when the vault is full', async () => {
    const g = guard({ maxValuesPerSession: 1 })
    const out = await g.protect(['a@x.io', 'b@x.io'], 's', [])
    expect(out.value).toEqual(['[EMAIL_1]', '[EMAIL]'])
  })

  it('keeps a __proto__ key a key', async () => {
    const g = guard()
    const value = JSON.parse('{"__proto__": {"mail": "a@x.io"}, "x": 1}')
    const out = await g.protect(value, 's', [])
    expect(Object.keys(out.value)).toEqual(['__proto__', 'x'])
    expect(Object.getPrototypeOf(out.value)).toBe(Object.prototype)
    expect(JSON.stringify(out.value)).toBe('{"__proto__":{"mail":"[EMAIL_1]"},"x":1}')
  })

  it('off mode changes nothing', async () => {
    const g = new PiiGuard({ ...guard().options, mode: 'off' })
    const value = { mail: 'a@x.io' }
    expect((await g.protect(value, 's', [])).value).toBe(value)
  })

  it('protectStripped is protect of the stripped value, keys and redaction included', async () => {
    const zw = '\u200b'
    const values: Json[] = [
      { mail: `a@x${zw}.io`, list: ['plain', 'b@x.io'], n: 4111111111111111 },
      // Keys that strip alike collapse before detection, as stripInvisibleJson made them.
      { [`c@x.io${zw}`]: 1, 'c@x.io': 2, [`\u{E0041}d@x.io`]: 3 },
      ['no invisible here', 'e@x.io', { k: 'call +1 (415) 555-2671' }],
      `tag\u{E0041}ged f@x.io`,
      [
        'lone \ud800 surrogate g@x.io',
        'bidi \u202e h@x.io',
        'c1 \u0085 i@x.io',
        'x'.repeat(5000) + '\u0000',
      ],
    ]
    for (const mode of ['tokenize', 'redact'] as const) {
      for (const value of values) {
        const expected = await guard({ mode }).protect(stripInvisibleJson(value), 's', ['l'])
        const got = await guard({ mode }).protectStripped(structuredClone(value), 's', ['l'])
        expect(got).toEqual(expected)
      }
    }
    const off = new PiiGuard({ ...guard().options, mode: 'off' })
    expect((await off.protectStripped({ [`k${zw}`]: `v${zw}` }, 's', [])).value).toEqual({ k: 'v' })
    const clean = { mail: 'nothing to find' }
    expect((await guard().protectStripped(clean, 's', [])).value).toBe(clean)
  })

  it('resolves its own tokens in arguments, with their labels; others stay text', async () => {
    const g = guard()
    await g.protect('a@x.io', 's', ['confidential'])
    const resolved = await g.resolveArgs(
      { to: '[EMAIL_1]', cc: ['[EMAIL_2]', 'x [EMAIL_1] y'], note: '[EMAIL_1' },
      's',
    )
    expect(resolved.args).toEqual({
      to: 'a@x.io',
      cc: ['[EMAIL_2]', 'x a@x.io y'],
      note: '[EMAIL_1',
    })
    expect(resolved.counts).toEqual({ email: 2 })
    expect(resolved.labels).toEqual(['confidential'])
    const other = await g.resolveArgs({ to: '[EMAIL_1]' }, 'another scope')
    expect(other.args).toEqual({ to: '[EMAIL_1]' })
    expect(other.counts).toEqual({})
  })

  it('knows which tools resolve: exact names, identifiers and server.*', () => {
    const g = guard()
    expect(g.resolves('mail', 'send_email')).toBe(true)
    expect(g.resolves('mail', 'send-email', 'send_email')).toBe(true)
    expect(g.resolves('mail', 'list')).toBe(false)
    expect(g.resolves('crm', 'anything')).toBe(true)
    expect(g.resolves('other', 'send_email')).toBe(false)
  })
})
