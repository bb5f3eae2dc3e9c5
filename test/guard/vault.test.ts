import { describe, expect, it } from 'vitest'
import { MemoryVault, tokenFor } from '../../src/guard/index.js'

const options = { ttlSeconds: 60, maxValuesPerSession: 3, maxValues: 5 }

function clock(start = 1_000_000) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms) }
}

describe('MemoryVault', () => {
  it('gives one value one token per scope, numbering per kind', async () => {
    const vault = new MemoryVault(options)
    const items = [
      { kind: 'email' as const, value: 'a@example.com' },
      { kind: 'phone' as const, value: '+1 415 555 2671' },
      { kind: 'email' as const, value: 'b@example.com' },
      { kind: 'email' as const, value: 'a@example.com' },
    ]
    expect(await vault.tokenize('s1', items, [])).toEqual([
      '[EMAIL_1]',
      '[PHONE_1]',
      '[EMAIL_2]',
      '[EMAIL_1]',
    ])
    // Another scope counts on its own, and cannot read the first one's tokens.
    expect(await vault.tokenize('s2', [items[2]!], [])).toEqual(['[EMAIL_1]'])
    expect(await vault.resolve('s2', ['[EMAIL_1]', '[EMAIL_2]'])).toEqual([
      { kind: 'email', value: 'b@example.com', labels: [] },
      undefined,
    ])
    expect(await vault.resolve('s1', ['[EMAIL_2]'])).toEqual([
      { kind: 'email', value: 'b@example.com', labels: [] },
    ])
    expect(tokenFor('api_key', 7)).toBe('[API_KEY_7]')
  })

  it('joins the labels of every call that produced a value', async () => {
    const vault = new MemoryVault(options)
    const item = { kind: 'email' as const, value: 'a@example.com' }
    await vault.tokenize('s', [item], ['confidential'])
    await vault.tokenize('s', [item], ['pii', 'confidential'])
    expect(await vault.resolve('s', ['[EMAIL_1]'])).toEqual([
      { kind: 'email', value: 'a@example.com', labels: ['confidential', 'pii'] },
    ])
  })

  it('holds maxValuesPerSession values in a scope (N), refuses the next (N+1)', async () => {
    const vault = new MemoryVault(options)
    const emails = ['a', 'b', 'c', 'd'].map((n) => ({ kind: 'email' as const, value: `${n}@x.io` }))
    expect(await vault.tokenize('s', emails, [])).toEqual([
      '[EMAIL_1]',
      '[EMAIL_2]',
      '[EMAIL_3]',
      undefined,
    ])
    // A value it holds still gets its token.
    expect(await vault.tokenize('s', [emails[0]!], [])).toEqual(['[EMAIL_1]'])
  })

  it('holds maxValues over every scope (N), refuses the next (N+1)', async () => {
    const vault = new MemoryVault(options)
    for (const scope of ['s1', 's2']) {
      await vault.tokenize(
        scope,
        [0, 1].map((i) => ({ kind: 'ip' as const, value: `192.0.2.${i}` })),
        [],
      )
    }
    expect(vault.size).toBe(4)
    expect(await vault.tokenize('s3', [{ kind: 'ip', value: '192.0.2.9' }], [])).toEqual(['[IP_1]'])
    expect(await vault.tokenize('s3', [{ kind: 'ip', value: '192.0.2.10' }], [])).toEqual([
      undefined,
    ])
    expect(vault.size).toBe(5)
  })

  it('forgets a value ttlSeconds after it was made, and never reuses its number too soon', async () => {
    const time = clock()
    const vault = new MemoryVault({ ...options, now: time.now })
    await vault.tokenize('s', [{ kind: 'email', value: 'a@x.io' }], [])
    time.advance(59_999)
    expect((await vault.resolve('s', ['[EMAIL_1]']))[0]?.value).toBe('a@x.io')
    time.advance(1)
    expect(await vault.resolve('s', ['[EMAIL_1]'])).toEqual([undefined])
    expect(vault.size).toBe(0)
    // The scope is empty but remembered: the next value is number 2, not a second [EMAIL_1].
    expect(await vault.tokenize('s', [{ kind: 'email', value: 'b@x.io' }], [])).toEqual([
      '[EMAIL_2]',
    ])
  })

  it('forgets an empty scope one TTL after its last value expired', async () => {
    const time = clock()
    const vault = new MemoryVault({ ...options, now: time.now })
    await vault.tokenize('s', [{ kind: 'email', value: 'a@x.io' }], [])
    time.advance(60_000)
    await vault.resolve('other', [])
    expect(vault.scopes).toBe(1)
    time.advance(59_999)
    await vault.resolve('other', [])
    expect(vault.scopes).toBe(1)
    time.advance(1)
    await vault.resolve('other', [])
    expect(vault.scopes).toBe(0)
  })
})
