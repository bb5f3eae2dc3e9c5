/**
 * The verified-token cache: a client's repeated token skips the signature check, but never past
 * its `exp`, never longer than `verifiedTokenCacheMs`, never beyond `verifiedTokenCacheEntries`,
 * and never once the issuer's key set changed (JWT-18 in test/security/jwt.test.ts covers the
 * removed key). Deleting the JWKS file shows which verifications were served from the cache: a
 * full check with `jwksCacheMaxAgeMs: 0` re-reads the file and fails without it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createTokenVerifier, type TokenVerifierOptions } from '../../src/auth/index.js'
import { identitySchema } from '../../src/config/index.js'
import { makeKey, signWith, type IdpKey } from '../helpers/idp.js'

const AUD = 'http://127.0.0.1:8787/mcp'
let dir: string
let file: string
let key: IdpKey

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-verified-'))
  file = join(dir, 'jwks.json')
  key = await makeKey('ES256')
  writeFileSync(file, JSON.stringify({ keys: [key.publicJwk] }))
})
afterEach(() => {
  vi.useRealTimers()
  rmSync(dir, { recursive: true, force: true })
})

function verifier(options: TokenVerifierOptions = {}) {
  return createTokenVerifier(
    identitySchema.parse({
      audience: AUD,
      issuers: [{ issuer: 'file-issuer', jwksFile: file, algorithms: ['ES256'] }],
      clockToleranceSeconds: 0,
    }),
    { jwksCacheMaxAgeMs: 0, ...options },
  )
}

const token = (sub: string, lifetimeS = 300) =>
  signWith(key, {
    iss: 'file-issuer',
    aud: AUD,
    sub,
    exp: Math.floor(Date.now() / 1000) + lifetimeS,
  })

const unreadable = () => `identity: cannot read the key set ${file} (expected a JWKS JSON file)`

describe('verified tokens', () => {
  it('serves a repeated token from the cache; a new token is checked in full', async () => {
    const v = verifier()
    const t1 = await token('alice')
    const first = await v.verify(`Bearer ${t1}`)
    rmSync(file)
    expect(await v.verify(`Bearer ${t1}`)).toBe(first)
    await expect(v.verify(`Bearer ${await token('bob')}`)).rejects.toThrow(unreadable())
  })

  it('never past the token’s exp', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    // On a whole second, so that exp (in seconds) is exactly 5 s away.
    vi.setSystemTime(Math.ceil(Date.now() / 1000) * 1000)
    const v = verifier()
    const t1 = await token('alice', 5)
    await v.verify(`Bearer ${t1}`)
    vi.advanceTimersByTime(4_999)
    expect((await v.verify(`Bearer ${t1}`)).sub).toBe('alice')
    vi.advanceTimersByTime(1)
    await expect(v.verify(`Bearer ${t1}`)).rejects.toThrow('token has expired')
  })

  it('for at most verifiedTokenCacheMs', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const v = verifier({ verifiedTokenCacheMs: 1_000 })
    const t1 = await token('alice')
    await v.verify(`Bearer ${t1}`)
    rmSync(file)
    vi.advanceTimersByTime(999)
    expect((await v.verify(`Bearer ${t1}`)).sub).toBe('alice')
    vi.advanceTimersByTime(1)
    await expect(v.verify(`Bearer ${t1}`)).rejects.toThrow(unreadable())
  })

  it('keeps verifiedTokenCacheEntries tokens, dropping the least recently used', async () => {
    const v = verifier({ verifiedTokenCacheEntries: 2 })
    const [t1, t2, t3] = await Promise.all([token('a'), token('b'), token('c')])
    await v.verify(`Bearer ${t1}`)
    await v.verify(`Bearer ${t2}`)
    await v.verify(`Bearer ${t1}`) // t1 is now the most recent, t2 the oldest
    await v.verify(`Bearer ${t3}`)
    rmSync(file)
    expect((await v.verify(`Bearer ${t1}`)).sub).toBe('a')
    expect((await v.verify(`Bearer ${t3}`)).sub).toBe('c')
    await expect(v.verify(`Bearer ${t2}`)).rejects.toThrow(unreadable())
  })

  it('is off with verifiedTokenCacheMs: 0', async () => {
    const v = verifier({ verifiedTokenCacheMs: 0 })
    const t1 = await token('alice')
    await v.verify(`Bearer ${t1}`)
    rmSync(file)
    await expect(v.verify(`Bearer ${t1}`)).rejects.toThrow(unreadable())
  })

  it('re-verifies every cached token once the key set changed', async () => {
    const v = verifier()
    const t1 = await token('alice')
    await v.verify(`Bearer ${t1}`)
    // Same kid, another key: the cached verification must not survive the new key set.
    const other = await makeKey('ES256')
    writeFileSync(file, JSON.stringify({ keys: [{ ...other.publicJwk, kid: key.kid }] }))
    await v.verify(
      `Bearer ${await signWith(
        { ...other, kid: key.kid },
        {
          iss: 'file-issuer',
          aud: AUD,
          sub: 'bob',
          exp: Math.floor(Date.now() / 1000) + 300,
        },
      )}`,
    )
    await expect(v.verify(`Bearer ${t1}`)).rejects.toThrow('token signature is invalid')
  })
})
