/**
 * Hostile inbound tokens (threat model §3.E, JWT-01..19) against the real verifier, real jose keys
 * and a real JWKS endpoint on 127.0.0.1.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createTokenVerifier,
  type IdentityConfig,
  type TokenVerifierOptions,
} from '../../src/auth/index.js'
import { identitySchema } from '../../src/config/index.js'
import { isSluiceError } from '../../src/errors.js'
import { hmacToken, makeKey, signWith, startIdp, unsignedToken, type Idp } from '../helpers/idp.js'

const AUD = 'http://127.0.0.1:8787/mcp'
let idp: Idp

beforeAll(async () => {
  idp = await startIdp()
})
afterAll(async () => {
  await idp.close()
})

function identity(
  overrides: Record<string, unknown> = {},
  issuer: Record<string, unknown> = {},
): IdentityConfig {
  return identitySchema.parse({
    audience: AUD,
    issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'], ...issuer }],
    tenantClaim: 'tenant',
    ...overrides,
  })
}

function verifier(
  overrides: Record<string, unknown> = {},
  issuer: Record<string, unknown> = {},
  options: TokenVerifierOptions = {},
) {
  return createTokenVerifier(identity(overrides, issuer), options)
}

const now = (): number => Math.floor(Date.now() / 1000)

/** Asserts a rejection with the code and message, and that the message never echoes the token. */
async function rejects(
  p: Promise<unknown>,
  code: 'AUTH_INVALID' | 'AUTH_REQUIRED',
  message: string | RegExp,
  token?: string,
): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isSluiceError(err), `expected a SluiceError, got ${String(err)}`).toBe(true)
  if (!isSluiceError(err)) return
  expect(err.code).toBe(code)
  if (typeof message === 'string') expect(err.message).toBe(message)
  else expect(err.message).toMatch(message)
  if (token !== undefined) {
    for (const part of token.split('.').filter((s) => s.length > 8))
      expect(err.message).not.toContain(part)
    expect(JSON.stringify(err.details ?? {})).not.toContain(token)
  }
}

describe('createTokenVerifier: accepted tokens', () => {
  it('maps a valid token to a principal (sub, iss, tenant, scope, claims, authMethod)', async () => {
    const token = await idp.mint({
      sub: 'alice',
      aud: AUD,
      tenant: 'acme',
      scope: 'crm.read  crm.write',
    })
    const p = await verifier().verify(`Bearer ${token}`)
    expect(p).toMatchObject({
      sub: 'alice',
      iss: idp.issuer,
      tenant: 'acme',
      scopes: ['crm.read', 'crm.write'],
      authMethod: 'jwt',
    })
    expect(p.claims['aud']).toBe(AUD)
    expect(Object.isFrozen(p)).toBe(true)
    expect(JSON.stringify(p)).not.toContain(token)
  })

  it('reads scopes from an scp array when there is no scope string', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD, scp: ['a', 'b', 7] })
    expect((await verifier().verify(`Bearer ${token}`)).scopes).toEqual(['a', 'b'])
  })

  it('accepts a case-insensitive scheme', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD })
    expect((await verifier().verify(`bearer ${token}`)).sub).toBe('alice')
    expect((await verifier().verify(`BEARER ${token}`)).sub).toBe('alice')
  })

  it('accepts a SPIFFE ID subject (JWT-SVID) as is', async () => {
    const token = await idp.mint({ sub: 'spiffe://example.org/ns/prod/sa/agent', aud: AUD })
    expect((await verifier().verify(`Bearer ${token}`)).sub).toBe(
      'spiffe://example.org/ns/prod/sa/agent',
    )
  })

  it('rejects a malformed SPIFFE ID subject', async () => {
    const token = await idp.mint({ sub: 'spiffe://Example.org/a/../b', aud: AUD })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      /^invalid SPIFFE ID: /,
      token,
    )
  })

  it('rejects a tenant claim that is not a string', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD, tenant: ['acme', 'other'] })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'token tenant claim must be a string',
      token,
    )
  })
})

describe('createTokenVerifier: hostile tokens', () => {
  it('JWT-01 alg none is rejected (none, None, NONE, empty signature)', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const token = unsignedToken(
        { iss: idp.issuer, sub: 'admin', aud: AUD, exp: now() + 300 },
        { alg },
      )
      await rejects(
        verifier().verify(`Bearer ${token}`),
        'AUTH_INVALID',
        'token algorithm is not allowed',
        token,
      )
    }
    const stripped =
      (await idp.mint({ sub: 'admin', aud: AUD })).split('.').slice(0, 2).join('.') + '.'
    await rejects(
      verifier().verify(`Bearer ${stripped}`),
      'AUTH_INVALID',
      'token signature is invalid',
      stripped,
    )
  })

  it('JWT-01 none and HS256 are refused even when the config lists them', async () => {
    const raw = identity()
    const forced = {
      ...raw,
      issuers: [{ ...raw.issuers[0]!, algorithms: ['none', 'HS256'] }],
    } as unknown as IdentityConfig
    expect(() => createTokenVerifier(forced)).toThrow(/allows no asymmetric algorithm/)
    const mixed = {
      ...raw,
      issuers: [{ ...raw.issuers[0]!, algorithms: ['RS256', 'HS256'] }],
    } as unknown as IdentityConfig
    const token = hmacToken(idp.keys[0]!.publicPem, {
      iss: idp.issuer,
      sub: 'admin',
      aud: AUD,
      exp: now() + 300,
    })
    await rejects(
      createTokenVerifier(mixed).verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'token algorithm is not allowed',
      token,
    )
  })

  it('JWT-02 HS256 signed with the RSA public key (PEM or JWK bytes) is rejected', async () => {
    const key = idp.keys[0]!
    const claims = { iss: idp.issuer, sub: 'admin', aud: AUD, exp: now() + 300 }
    const withPem = hmacToken(key.publicPem, claims, { alg: 'HS256', kid: key.kid })
    const withJwk = hmacToken(JSON.stringify(key.publicJwk), claims, { alg: 'HS256', kid: key.kid })
    await rejects(
      verifier().verify(`Bearer ${withPem}`),
      'AUTH_INVALID',
      'token algorithm is not allowed',
      withPem,
    )
    await rejects(
      verifier().verify(`Bearer ${withJwk}`),
      'AUTH_INVALID',
      'token algorithm is not allowed',
      withJwk,
    )
  })

  it('JWT-03 a correctly signed token outside the algorithm allowlist is rejected', async () => {
    const es = await idp.addKey('ES256')
    try {
      const token = await idp.mint({ sub: 'alice', aud: AUD }, { key: es })
      await rejects(
        verifier().verify(`Bearer ${token}`),
        'AUTH_INVALID',
        'token algorithm is not allowed',
        token,
      )
      expect(
        (await verifier({}, { algorithms: ['RS256', 'ES256'] }).verify(`Bearer ${token}`)).sub,
      ).toBe('alice')
    } finally {
      idp.removeKey(es.kid)
    }
  })

  it('JWT-04 an expired token is rejected', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD, exp: now() - 3600, iat: now() - 7200 })
    await rejects(verifier().verify(`Bearer ${token}`), 'AUTH_INVALID', 'token has expired', token)
  })

  it('JWT-04 a token without exp is rejected', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD }, { noExp: true })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'token lacks the required "exp" claim',
      token,
    )
  })

  it('JWT-04 exp given as a string is rejected', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD, exp: '9999999999' as unknown as number })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'token expiry (exp) is invalid',
      token,
    )
  })

  it('JWT-04 a future nbf is rejected', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD, nbf: now() + 600 })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'token is not valid yet (nbf)',
      token,
    )
  })

  it('JWT-04 a future iat (beyond the tolerance) is rejected', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD, iat: now() + 600 })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      /^token issue time \(iat\)/,
      token,
    )
  })

  it('JWT-04 a token without sub is rejected', async () => {
    const token = await idp.mint({ aud: AUD })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'token lacks the required "sub" claim',
      token,
    )
  })

  it('JWT-17 exp = now - 90 s with a 30 s tolerance is rejected; now - 10 s is accepted', async () => {
    const late = await idp.mint({ sub: 'alice', aud: AUD, exp: now() - 90, iat: now() - 400 })
    await rejects(
      verifier({ clockToleranceSeconds: 30 }).verify(`Bearer ${late}`),
      'AUTH_INVALID',
      'token has expired',
      late,
    )
    const withinSkew = await idp.mint({ sub: 'alice', aud: AUD, exp: now() - 10, iat: now() - 400 })
    expect((await verifier({ clockToleranceSeconds: 30 }).verify(`Bearer ${withinSkew}`)).sub).toBe(
      'alice',
    )
    await rejects(
      verifier({ clockToleranceSeconds: 0 }).verify(`Bearer ${withinSkew}`),
      'AUTH_INVALID',
      'token has expired',
    )
  })

  it('JWT-05 a wrong, missing, trailing-slash or differently-cased audience is rejected', async () => {
    for (const aud of ['http://other/mcp', `${AUD}/`, AUD.toUpperCase()]) {
      const token = await idp.mint({ sub: 'alice', aud })
      await rejects(
        verifier().verify(`Bearer ${token}`),
        'AUTH_INVALID',
        'token audience is not this gateway',
        token,
      )
    }
    const none = await idp.mint({ sub: 'alice' })
    await rejects(
      verifier().verify(`Bearer ${none}`),
      'AUTH_INVALID',
      'token lacks the required "aud" claim',
      none,
    )
  })

  it('JWT-05 a multi-valued audience that includes ours is rejected', async () => {
    const token = await idp.mint({ sub: 'alice', aud: [AUD, 'https://other.example/mcp'] })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      /multi-audience tokens are refused/,
      token,
    )
    const single = await idp.mint({ sub: 'alice', aud: [AUD] })
    expect((await verifier().verify(`Bearer ${single}`)).sub).toBe('alice')
  })

  it('JWT-06 a wrong or trailing-slash issuer is rejected', async () => {
    for (const iss of ['https://evil.example', `${idp.issuer}/`]) {
      const token = await idp.mint({ sub: 'alice', aud: AUD, iss })
      await rejects(
        verifier().verify(`Bearer ${token}`),
        'AUTH_INVALID',
        'token issuer is not trusted',
        token,
      )
    }
  })

  it("JWT-06 a token claiming another trusted issuer but signed with this issuer's key is rejected", async () => {
    const other = await startIdp()
    try {
      const v = createTokenVerifier(
        identitySchema.parse({
          audience: AUD,
          issuers: [
            { issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] },
            { issuer: other.issuer, jwksUri: other.jwksUri, algorithms: ['RS256'] },
          ],
        }),
      )
      const forged = await idp.mint({ sub: 'alice', aud: AUD, iss: other.issuer })
      await rejects(
        v.verify(`Bearer ${forged}`),
        'AUTH_INVALID',
        'no key of the issuer matches the token',
        forged,
      )
      const genuine = await other.mint({ sub: 'bob', aud: AUD })
      expect(await v.verify(`Bearer ${genuine}`)).toMatchObject({ sub: 'bob', iss: other.issuer })
    } finally {
      await other.close()
    }
  })

  it("JWT-12 a token for another resource (another gateway's audience) is rejected", async () => {
    const token = await idp.mint({ sub: 'alice', aud: 'http://127.0.0.1:9999/mcp' })
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'token audience is not this gateway',
      token,
    )
  })

  it('JWT-12 a required typ (at+jwt) refuses other token types', async () => {
    const v = verifier({}, { typ: 'at+jwt' })
    const idToken = await idp.mint({ sub: 'alice', aud: AUD }, { header: { typ: 'JWT' } })
    await rejects(
      v.verify(`Bearer ${idToken}`),
      'AUTH_INVALID',
      'token type (typ header) is not accepted',
      idToken,
    )
    const at = await idp.mint({ sub: 'alice', aud: AUD }, { header: { typ: 'application/at+jwt' } })
    expect((await v.verify(`Bearer ${at}`)).sub).toBe('alice')
  })

  it('JWT-07 an unknown or injected kid is rejected', async () => {
    const attacker = await makeKey('RS256')
    for (const kid of [
      'unknown-kid',
      '../../../../dev/null',
      "' OR 1=1--",
      'a\u0000b',
      'k'.repeat(4000),
    ]) {
      const token = await signWith(
        attacker,
        { iss: idp.issuer, sub: 'alice', aud: AUD, exp: now() + 300 },
        { kid },
      )
      await rejects(
        verifier().verify(`Bearer ${token}`),
        'AUTH_INVALID',
        'no key of the issuer matches the token',
        token,
      )
    }
  })

  it('JWT-08 an embedded jwk or jku header is ignored (only pinned keys verify)', async () => {
    const attacker = await makeKey('RS256')
    const claims = { iss: idp.issuer, sub: 'admin', aud: AUD, exp: now() + 300 }
    const embedded = await signWith(attacker, claims, {
      kid: idp.keys[0]!.kid,
      jwk: attacker.publicJwk,
    })
    await rejects(
      verifier().verify(`Bearer ${embedded}`),
      'AUTH_INVALID',
      'token signature is invalid',
      embedded,
    )
    const jku = await signWith(attacker, claims, {
      kid: attacker.kid,
      jku: 'http://127.0.0.1:1/evil.json',
    })
    await rejects(
      verifier().verify(`Bearer ${jku}`),
      'AUTH_INVALID',
      'no key of the issuer matches the token',
      jku,
    )
  })

  it('JWT-09 a flood of unknown kids causes at most one refetch per cooldown', async () => {
    const v = verifier({}, {}, { jwksCooldownMs: 60_000 })
    const before = idp.jwksFetches
    await v.verify(`Bearer ${await idp.mint({ sub: 'alice', aud: AUD })}`)
    const attacker = await makeKey('RS256')
    for (let i = 0; i < 20; i += 1) {
      const token = await signWith(
        attacker,
        { iss: idp.issuer, sub: 'x', aud: AUD, exp: now() + 300 },
        { kid: `flood-${i}` },
      )
      await rejects(
        v.verify(`Bearer ${token}`),
        'AUTH_INVALID',
        'no key of the issuer matches the token',
      )
    }
    expect(idp.jwksFetches - before).toBe(1)
  })

  it('JWT-10 a crit header with an unknown extension is rejected', async () => {
    const token = await idp.mint(
      { sub: 'alice', aud: AUD },
      { header: { crit: ['x-unknown'], 'x-unknown': true } },
    )
    await rejects(
      verifier().verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'token uses an unsupported header or algorithm',
      token,
    )
  })

  it('JWT-11 a token of maxTokenBytes is accepted and one byte over is rejected before decoding', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD, pad: 'x'.repeat(500) })
    const n = token.length
    expect((await verifier({ maxTokenBytes: n }).verify(`Bearer ${token}`)).sub).toBe('alice')
    await rejects(
      verifier({ maxTokenBytes: n - 1 }).verify(`Bearer ${token}`),
      'AUTH_INVALID',
      `token is larger than ${n - 1} bytes`,
      token,
    )
  })

  it('JWT-11 a 1 MB token, many dots and invalid base64url are rejected', async () => {
    const huge = `${'a'.repeat(1024 * 1024)}.b.c`
    await rejects(
      verifier().verify(`Bearer ${huge}`),
      'AUTH_INVALID',
      'token is larger than 8192 bytes',
    )
    await rejects(verifier().verify('Bearer a.b.c.d.e.f.g'), 'AUTH_INVALID', 'token is malformed')
    await rejects(
      verifier().verify('Bearer a.b.c.d.e'),
      'AUTH_INVALID',
      'encrypted tokens (JWE) are not accepted',
    )
    await rejects(
      verifier().verify('Bearer !!!.???.###'),
      'AUTH_INVALID',
      /^malformed Authorization header/,
    )
    await rejects(
      verifier().verify('Bearer eyJhbGciOi.eyJzdWIi.c2ln'),
      'AUTH_INVALID',
      'token is malformed',
    )
  })

  it('JWT-15 no token at all is AUTH_REQUIRED', async () => {
    await rejects(
      verifier().verify(undefined),
      'AUTH_REQUIRED',
      'authorization required: send "Authorization: Bearer <token>"',
    )
    await rejects(
      verifier().verify(''),
      'AUTH_REQUIRED',
      'authorization required: send "Authorization: Bearer <token>"',
    )
  })

  it('JWT-19 two Bearer parts, a bad scheme, extra spaces or two headers are rejected', async () => {
    const token = await idp.mint({ sub: 'alice', aud: AUD })
    const malformed =
      'malformed Authorization header: expected exactly "Bearer <token>" with one space'
    for (const header of [
      `Bearer ${token} ${token}`,
      `Bearer  ${token}`,
      ` Bearer ${token}`,
      `Bearer ${token} `,
      `Bearer\t${token}`,
      `Basic ${token}`,
      `Token ${token}`,
      token,
      'Bearer',
      'Bearer ',
    ]) {
      await rejects(verifier().verify(header), 'AUTH_INVALID', malformed, token)
    }
    await rejects(
      verifier().verify([`Bearer ${token}`, `Bearer ${token}`]),
      'AUTH_INVALID',
      'send exactly one Authorization header',
      token,
    )
    expect((await verifier().verify([`Bearer ${token}`])).sub).toBe('alice')
  })
})

describe('createTokenVerifier: key source failures', () => {
  it('an unreachable jwksUri fails closed with a clear message', async () => {
    const gone = await startIdp()
    const token = await gone.mint({ sub: 'alice', aud: AUD })
    await gone.close()
    const v = createTokenVerifier(
      identitySchema.parse({
        audience: AUD,
        issuers: [{ issuer: gone.issuer, jwksUri: gone.jwksUri, algorithms: ['RS256'] }],
      }),
    )
    await rejects(
      v.verify(`Bearer ${token}`),
      'AUTH_INVALID',
      'the issuer keys are unavailable',
      token,
    )
  })
})

describe('createTokenVerifier: key rotation', () => {
  it('JWT-18 jwksUri: a new key is accepted after one refetch; a removed key is rejected after it', async () => {
    const rotating = await startIdp()
    try {
      const v = createTokenVerifier(
        identitySchema.parse({
          audience: AUD,
          issuers: [{ issuer: rotating.issuer, jwksUri: rotating.jwksUri, algorithms: ['RS256'] }],
        }),
        { jwksCooldownMs: 0 },
      )
      const oldKey = rotating.keys[0]!
      const oldToken = await rotating.mint({ sub: 'alice', aud: AUD }, { key: oldKey })
      expect((await v.verify(`Bearer ${oldToken}`)).sub).toBe('alice')
      expect(rotating.jwksFetches).toBe(1)

      const newKey = await rotating.addKey('RS256')
      rotating.removeKey(oldKey.kid)
      const newToken = await rotating.mint({ sub: 'bob', aud: AUD }, { key: newKey })
      expect((await v.verify(`Bearer ${newToken}`)).sub).toBe('bob')
      expect(rotating.jwksFetches).toBe(2)

      await rejects(
        v.verify(`Bearer ${oldToken}`),
        'AUTH_INVALID',
        'no key of the issuer matches the token',
        oldToken,
      )
    } finally {
      await rotating.close()
    }
  })

  describe('jwksFile', () => {
    let dir: string
    afterEach(() => rmSync(dir, { recursive: true, force: true }))

    it('JWT-18 jwksFile: read once, re-read on an unknown kid; a removed key stops working', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-jwks-'))
      const file = join(dir, 'jwks.json')
      const k1 = await makeKey('ES256')
      const k2 = await makeKey('ES256')
      writeFileSync(file, JSON.stringify({ keys: [k1.publicJwk] }))
      const v = createTokenVerifier(
        identitySchema.parse({
          audience: AUD,
          issuers: [{ issuer: 'file-issuer', jwksFile: file, algorithms: ['ES256'] }],
        }),
        { jwksCooldownMs: 0 },
      )
      const claims = { iss: 'file-issuer', aud: AUD, exp: now() + 300 }
      const t1 = await signWith(k1, { ...claims, sub: 'alice' })
      expect((await v.verify(`Bearer ${t1}`)).sub).toBe('alice')

      writeFileSync(file, JSON.stringify({ keys: [k2.publicJwk] }))
      const t2 = await signWith(k2, { ...claims, sub: 'bob' })
      expect((await v.verify(`Bearer ${t2}`)).sub).toBe('bob')
      await rejects(
        v.verify(`Bearer ${t1}`),
        'AUTH_INVALID',
        'no key of the issuer matches the token',
        t1,
      )
    })

    it('does not re-read the file within the cooldown', async () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-jwks-'))
      const file = join(dir, 'jwks.json')
      const k1 = await makeKey('ES256')
      const k2 = await makeKey('ES256')
      writeFileSync(file, JSON.stringify({ keys: [k1.publicJwk] }))
      const v = createTokenVerifier(
        identitySchema.parse({
          audience: AUD,
          issuers: [{ issuer: 'file-issuer', jwksFile: file, algorithms: ['ES256'] }],
        }),
        { jwksCooldownMs: 60_000 },
      )
      writeFileSync(file, JSON.stringify({ keys: [k2.publicJwk] }))
      const t2 = await signWith(k2, { iss: 'file-issuer', aud: AUD, exp: now() + 300, sub: 'bob' })
      await rejects(
        v.verify(`Bearer ${t2}`),
        'AUTH_INVALID',
        'no key of the issuer matches the token',
        t2,
      )
    })

    it('a missing key file is a config error at construction', () => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-jwks-'))
      expect(() =>
        createTokenVerifier(
          identitySchema.parse({
            audience: AUD,
            issuers: [{ issuer: 'x', jwksFile: join(dir, 'nope.json') }],
          }),
        ),
      ).toThrow(/identity: cannot read the key set/)
    })
  })
})
