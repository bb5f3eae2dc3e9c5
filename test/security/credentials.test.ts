/**
 * Upstream credentials (threat model §3.F, TX-01..08, and canaries for CRD-06/07): RFC 8693 token
 * exchange against a real local STS, static and gateway-signed grants, and the redactor.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createGrantBroker,
  createTokenVerifier,
  loadOrCreateGatewayKey,
  type GatewayKey,
  type GrantBroker,
} from '../../src/auth/index.js'
import { grantSchema, identitySchema, type Grant } from '../../src/config/index.js'
import { isSluiceError, type SluiceError } from '../../src/errors.js'
import type { Principal } from '../../src/types.js'
import { startIdp, type Idp } from '../helpers/idp.js'

const AUD = 'http://127.0.0.1:8787/mcp'
const CRM = 'https://crm.example/mcp'
const GATEWAY_ISS = 'https://sluice.test'
const GATEWAY_ID = 'spiffe://sluice.test/gateway'

let idp: Idp
let gatewayKey: GatewayKey
let dir: string
const envNames: string[] = []

beforeAll(async () => {
  idp = await startIdp()
  gatewayKey = await loadOrCreateGatewayKey(undefined, { warn: () => {} })
})
afterAll(async () => {
  await idp.close()
})
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-grants-'))
  idp.misbehave = 'none'
  idp.clients = {}
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
  for (const name of envNames.splice(0)) delete process.env[name]
})

/** A unique random secret for one test: it must appear in none of the outputs we control. */
function canary(label = 'canary'): string {
  return `${label}-${randomBytes(18).toString('base64url')}`
}

function setEnv(value: string): string {
  const name = `SLUICE_TEST_${randomBytes(6).toString('hex').toUpperCase()}`
  process.env[name] = value
  envNames.push(name)
  return name
}

function broker(): GrantBroker {
  const b = createGrantBroker({
    baseDir: dir,
    gatewayKey,
    gatewayIssuer: GATEWAY_ISS,
    gatewayId: GATEWAY_ID,
  })
  idp.trustActor(b.gatewayJwks())
  return b
}

function exchangeGrant(extra: Record<string, unknown> = {}): Grant {
  return grantSchema.parse({
    grant: 'token-exchange',
    tokenEndpoint: idp.tokenEndpoint,
    audience: CRM,
    scope: 'crm.read',
    ...extra,
  })
}

/** A verified principal and its inbound token, as the gateway would have them. */
async function caller(
  sub: string,
  tenant = 'acme',
): Promise<{ principal: Principal; inboundToken: string }> {
  const inboundToken = await idp.mint({ sub, aud: AUD, tenant, scope: 'crm.read crm.write' })
  const verifier = createTokenVerifier(
    identitySchema.parse({
      audience: AUD,
      issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri }],
      tenantClaim: 'tenant',
    }),
  )
  return { principal: await verifier.verify(`Bearer ${inboundToken}`), inboundToken }
}

async function grantError(p: Promise<unknown>): Promise<SluiceError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isSluiceError(err, 'GRANT_FAILED'), `expected GRANT_FAILED, got ${String(err)}`).toBe(true)
  return err as SluiceError
}

function bearer(headers: Record<string, string>): string {
  const value = headers['authorization'] ?? ''
  expect(value.startsWith('Bearer ')).toBe(true)
  return value.slice('Bearer '.length)
}

describe('grant: token-exchange', () => {
  it('TX-01 the upstream-bound token has the upstream audience, act.sub = gateway, sub = user, and is not the inbound token', async () => {
    const { principal, inboundToken } = await caller('alice')
    const token = bearer(
      await broker().headersFor('crm', exchangeGrant(), { principal, inboundToken }),
    )
    expect(token).not.toBe(inboundToken)
    const { payload } = await jwtVerify(token, createLocalJWKSet(idp.jwks()), {
      issuer: idp.issuer,
      audience: CRM,
    })
    expect(payload.sub).toBe('alice')
    expect(payload['act']).toEqual({ sub: GATEWAY_ID })
    expect(payload.aud).toBe(CRM)
  })

  it('TX-02 the STS sees the RFC 8693 form fields, an actor token signed by the gateway, and client authentication', async () => {
    const secret = canary('client-secret')
    idp.clients = { 'sluice-gw': secret }
    const { principal, inboundToken } = await caller('alice')
    const before = idp.tokenRequests.length
    const b = broker()
    await b.headersFor(
      'crm',
      exchangeGrant({
        resource: CRM,
        clientId: 'sluice-gw',
        clientSecretFrom: `env:${setEnv(secret)}`,
      }),
      {
        principal,
        inboundToken,
      },
    )
    expect(idp.tokenRequests.length).toBe(before + 1)
    const request = idp.tokenRequests.at(-1)!
    expect(request.contentType).toBe('application/x-www-form-urlencoded')
    expect(request.form).toMatchObject({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: inboundToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: CRM,
      resource: CRM,
      scope: 'crm.read',
    })
    const { payload: actor } = await jwtVerify(
      request.form['actor_token']!,
      createLocalJWKSet(b.gatewayJwks()),
      {
        issuer: GATEWAY_ISS,
        audience: idp.tokenEndpoint,
      },
    )
    expect(actor.sub).toBe(GATEWAY_ID)
    expect(actor.exp! - actor.iat!).toBeLessThanOrEqual(60)
    expect(Buffer.from(request.authorization!.replace(/^Basic /, ''), 'base64').toString()).toBe(
      `sluice-gw:${secret}`,
    )
    expect(b.secretValues()).toContain(secret)
  })

  it('TX-02 a client id without a secret is sent as client_id in the form', async () => {
    const { principal, inboundToken } = await caller('alice')
    await broker().headersFor('crm', exchangeGrant({ clientId: 'public-client' }), {
      principal,
      inboundToken,
    })
    const request = idp.tokenRequests.at(-1)!
    expect(request.form['client_id']).toBe('public-client')
    expect(request.authorization).toBeUndefined()
  })

  const refusals: Array<[Idp['misbehave'], string]> = [
    [
      'broad-scope',
      'credentials for server "crm": token exchange response refused: the granted scope is broader than requested',
    ],
    [
      'long-expiry',
      'credentials for server "crm": token exchange response refused: expires_in exceeds 86400 seconds',
    ],
    [
      'wrong-token-type',
      'credentials for server "crm": token exchange response refused: issued_token_type must be an access token or a JWT',
    ],
    [
      'wrong-audience',
      'credentials for server "crm": token exchange response refused: the issued token is for another audience',
    ],
    [
      'echo-subject',
      'credentials for server "crm": token exchange response refused: the issued token is the caller\'s own token',
    ],
    [
      'not-json',
      'credentials for server "crm": token exchange failed: the token endpoint answered with no JSON object',
    ],
  ]
  for (const [mode, message] of refusals) {
    it(`TX-03 a misbehaving STS (${mode}) is refused: GRANT_FAILED, fail closed`, async () => {
      const { principal, inboundToken } = await caller(`user-${mode}`)
      idp.misbehave = mode
      const b = broker()
      const err = await grantError(
        b.headersFor('crm', exchangeGrant(), { principal, inboundToken }),
      )
      expect(err.message).toBe(message)
      expect(`${err.message}${JSON.stringify(err.details ?? {})}`).not.toContain(inboundToken)
      // Refused tokens are not cached: the next call asks again.
      const count = idp.tokenRequests.length
      await grantError(b.headersFor('crm', exchangeGrant(), { principal, inboundToken }))
      expect(idp.tokenRequests.length).toBe(count + 1)
    })
  }

  it('TX-04 an STS 5xx is GRANT_FAILED with a sanitised message (the body echoing the token is dropped)', async () => {
    const { principal, inboundToken } = await caller('alice')
    idp.misbehave = 'status-500'
    const err = await grantError(
      broker().headersFor('crm', exchangeGrant(), { principal, inboundToken }),
    )
    expect(err.message).toBe(
      'credentials for server "crm": token exchange refused: the token endpoint answered HTTP 500',
    )
    expect(err.message).not.toContain(inboundToken)
  })

  it('TX-04 invalid_target is GRANT_FAILED naming only the OAuth error code', async () => {
    const { principal, inboundToken } = await caller('alice')
    idp.misbehave = 'invalid-target'
    const err = await grantError(
      broker().headersFor('crm', exchangeGrant(), { principal, inboundToken }),
    )
    expect(err.message).toBe(
      'credentials for server "crm": token exchange refused: the token endpoint answered HTTP 400 (invalid_target)',
    )
  })

  it('TX-04 a timeout is GRANT_FAILED after timeoutMs, with no fallback', async () => {
    const { principal, inboundToken } = await caller('alice')
    idp.misbehave = 'timeout'
    const err = await grantError(
      broker().headersFor('crm', exchangeGrant({ timeoutMs: 200 }), { principal, inboundToken }),
    )
    expect(err.message).toBe(
      'credentials for server "crm": the token endpoint did not answer within 200 ms',
    )
  })

  it('TX-04 an unreachable token endpoint is GRANT_FAILED', async () => {
    const { principal, inboundToken } = await caller('alice')
    const closed = await startIdp()
    const endpoint = closed.tokenEndpoint
    await closed.close()
    const err = await grantError(
      broker().headersFor('crm', exchangeGrant({ tokenEndpoint: endpoint }), {
        principal,
        inboundToken,
      }),
    )
    expect(err.message).toBe('credentials for server "crm": the token endpoint is unreachable')
  })

  it('TX-05 two users of the same tenant get different tokens; the same user reuses the cached one', async () => {
    const b = broker()
    const alice = await caller('alice')
    const bob = await caller('bob')
    const before = idp.tokenRequests.length
    const a1 = bearer(await b.headersFor('crm', exchangeGrant(), alice))
    const b1 = bearer(await b.headersFor('crm', exchangeGrant(), bob))
    const a2 = bearer(await b.headersFor('crm', exchangeGrant(), alice))
    expect(a1).not.toBe(b1)
    expect(decodeJwt(a1).sub).toBe('alice')
    expect(decodeJwt(b1).sub).toBe('bob')
    expect(a2).toBe(a1)
    expect(idp.tokenRequests.length - before).toBe(2)
  })

  it('TX-05 the cache is keyed by server, audience and scope too', async () => {
    const b = broker()
    const alice = await caller('alice')
    const before = idp.tokenRequests.length
    const t1 = bearer(await b.headersFor('crm', exchangeGrant(), alice))
    const t2 = bearer(await b.headersFor('crm2', exchangeGrant(), alice))
    const t3 = bearer(await b.headersFor('crm', exchangeGrant({ scope: 'crm.write' }), alice))
    const t4 = bearer(
      await b.headersFor('crm', exchangeGrant({ audience: 'https://other.example/mcp' }), alice),
    )
    expect(new Set([t1, t2, t3, t4]).size).toBe(4)
    expect(idp.tokenRequests.length - before).toBe(4)
  })

  it('TX-05 concurrent requests for the same key share one exchange (single flight)', async () => {
    const b = broker()
    const carol = await caller('carol')
    const before = idp.tokenRequests.length
    const tokens = await Promise.all(
      Array.from({ length: 5 }, () => b.headersFor('crm', exchangeGrant(), carol)),
    )
    expect(new Set(tokens.map(bearer)).size).toBe(1)
    expect(idp.tokenRequests.length - before).toBe(1)
  })

  it('does not cache a token whose lifetime is within refreshSkewSeconds, or one without expires_in', async () => {
    const b = broker()
    const alice = await caller('alice')
    let before = idp.tokenRequests.length
    await b.headersFor('crm', exchangeGrant({ refreshSkewSeconds: 300 }), alice)
    await b.headersFor('crm', exchangeGrant({ refreshSkewSeconds: 300 }), alice)
    expect(idp.tokenRequests.length - before).toBe(2)
    await b.headersFor('crm', exchangeGrant({ refreshSkewSeconds: 299 }), alice)
    await b.headersFor('crm', exchangeGrant({ refreshSkewSeconds: 299 }), alice)
    expect(idp.tokenRequests.length - before).toBe(3)

    idp.misbehave = 'no-expiry'
    const c = broker()
    before = idp.tokenRequests.length
    await c.headersFor('crm', exchangeGrant(), alice)
    await c.headersFor('crm', exchangeGrant(), alice)
    expect(idp.tokenRequests.length - before).toBe(2)
  })

  it('without an inbound token (stdio, run) is GRANT_FAILED with a clear message', async () => {
    const { principal } = await caller('alice')
    const err = await grantError(broker().headersFor('crm', exchangeGrant(), { principal }))
    expect(err.message).toMatch(
      /^credentials for server "crm": token exchange needs the caller's bearer token/,
    )
  })

  it('a cancelled request is GRANT_FAILED', async () => {
    const { principal, inboundToken } = await caller('alice')
    const err = await grantError(
      broker().headersFor('crm', exchangeGrant(), {
        principal,
        inboundToken,
        signal: AbortSignal.abort(),
      }),
    )
    expect(err.message).toBe('credentials for server "crm": the request was cancelled')
  })

  it('an unset client secret is GRANT_FAILED naming the variable, not a value', async () => {
    const { principal, inboundToken } = await caller('alice')
    const err = await grantError(
      broker().headersFor(
        'crm',
        exchangeGrant({ clientId: 'x', clientSecretFrom: 'env:SLUICE_TEST_UNSET_SECRET' }),
        { principal, inboundToken },
      ),
    )
    expect(err.message).toBe(
      'credentials for server "crm": the client secret: secret env:SLUICE_TEST_UNSET_SECRET: environment variable SLUICE_TEST_UNSET_SECRET is not set',
    )
  })

  it('TX-08 a token bound to upstream A is rejected by upstream B (audience)', async () => {
    const alice = await caller('alice')
    const token = bearer(await broker().headersFor('crm', exchangeGrant(), alice))
    await expect(
      jwtVerify(token, createLocalJWKSet(idp.jwks()), { audience: 'https://files.example/mcp' }),
    ).rejects.toThrow(/aud/)
  })
})

describe('grant: static', () => {
  it('reads the value from env, lazily, with a prefix, and caches it', async () => {
    const secret = canary()
    const name = `SLUICE_TEST_LAZY_${randomBytes(4).toString('hex').toUpperCase()}`
    envNames.push(name)
    const b = broker()
    const grant = grantSchema.parse({
      grant: 'static',
      header: 'Authorization',
      valueFrom: `env:${name}`,
      prefix: 'Bearer ',
    })
    const { principal } = await caller('alice')
    process.env[name] = secret // set after the broker exists: read at first use
    expect(await b.headersFor('crm', grant, { principal })).toEqual({
      Authorization: `Bearer ${secret}`,
    })
    process.env[name] = 'changed-value-123'
    expect(await b.headersFor('crm', grant, { principal })).toEqual({
      Authorization: `Bearer ${secret}`,
    })
  })

  it('reads the value from a file relative to baseDir (trimmed)', async () => {
    const secret = canary()
    writeFileSync(join(dir, 'crm.token'), `${secret}\n`, { mode: 0o600 })
    const grant = grantSchema.parse({
      grant: 'static',
      header: 'X-Api-Key',
      valueFrom: 'file:crm.token',
    })
    const { principal } = await caller('alice')
    expect(await broker().headersFor('crm', grant, { principal })).toEqual({ 'X-Api-Key': secret })
  })

  it('a missing env var or file is GRANT_FAILED', async () => {
    const { principal } = await caller('alice')
    const env = grantSchema.parse({
      grant: 'static',
      header: 'X-Key',
      valueFrom: 'env:SLUICE_TEST_NOT_SET',
    })
    expect((await grantError(broker().headersFor('crm', env, { principal }))).message).toBe(
      'credentials for server "crm": the static secret: secret env:SLUICE_TEST_NOT_SET: environment variable SLUICE_TEST_NOT_SET is not set',
    )
    const file = grantSchema.parse({
      grant: 'static',
      header: 'X-Key',
      valueFrom: 'file:nope.token',
    })
    expect((await grantError(broker().headersFor('crm', file, { principal }))).message).toMatch(
      /^credentials for server "crm": the static secret file: secret file:nope.token: cannot read /,
    )
  })

  it('a value with a line break is refused (no header smuggling)', async () => {
    const secret = canary()
    writeFileSync(join(dir, 'bad.token'), `${secret}\r\nX-Evil: 1`)
    const grant = grantSchema.parse({
      grant: 'static',
      header: 'X-Key',
      valueFrom: 'file:bad.token',
    })
    const { principal } = await caller('alice')
    const err = await grantError(broker().headersFor('crm', grant, { principal }))
    expect(err.message).toBe(
      'credentials for server "crm": the static secret is not a valid header value (control characters or too long)',
    )
    expect(err.message).not.toContain(secret)
  })

  it('passthrough is refused', async () => {
    const { principal, inboundToken } = await caller('alice')
    const err = await grantError(
      broker().headersFor('crm', { grant: 'passthrough' }, { principal, inboundToken }),
    )
    expect(err.message).toBe(
      'credentials for server "crm": the "passthrough" grant is refused: the caller\'s token never leaves the gateway',
    )
  })
})

describe('grant: jwt', () => {
  const FILES = 'https://files.example/mcp'

  it('signs a token that verifies against gatewayJwks() with the upstream audience', async () => {
    const b = broker()
    const { principal } = await caller('alice')
    const grant = grantSchema.parse({
      grant: 'jwt',
      audience: FILES,
      ttlSeconds: 120,
      scope: 'files.read',
    })
    const token = bearer(await b.headersFor('files', grant, { principal }))
    const { payload, protectedHeader } = await jwtVerify(
      token,
      createLocalJWKSet(b.gatewayJwks()),
      {
        issuer: GATEWAY_ISS,
        audience: FILES,
        algorithms: ['ES256'],
      },
    )
    expect(protectedHeader.alg).toBe('ES256')
    expect(payload).toMatchObject({
      sub: 'alice',
      act: { sub: GATEWAY_ID },
      scope: 'files.read',
      tenant: 'acme',
    })
    expect(payload.exp! - payload.iat!).toBe(120)
    expect(typeof payload.jti).toBe('string')
    await expect(
      jwtVerify(token, createLocalJWKSet(b.gatewayJwks()), { audience: 'https://crm.example/mcp' }),
    ).rejects.toThrow(/aud/)
    expect(JSON.stringify(b.gatewayJwks())).not.toMatch(/"d"/)
  })

  it('is cached per principal and server', async () => {
    const b = broker()
    const alice = await caller('alice')
    const bob = await caller('bob')
    const grant = grantSchema.parse({ grant: 'jwt', audience: FILES })
    const a1 = bearer(await b.headersFor('files', grant, alice))
    const a2 = bearer(await b.headersFor('files', grant, alice))
    const b1 = bearer(await b.headersFor('files', grant, bob))
    const a3 = bearer(await b.headersFor('other', grant, alice))
    expect(a2).toBe(a1)
    expect(b1).not.toBe(a1)
    expect(a3).not.toBe(a1)
  })
})

describe('redactor on the broker', () => {
  it('catches the static secret, the exchanged token, the client secret and the inbound token in any output', async () => {
    const staticSecret = canary('static')
    const clientSecret = canary('client')
    idp.clients = { gw: clientSecret }
    const b = broker()
    const { principal, inboundToken } = await caller('alice')
    const staticGrant = grantSchema.parse({
      grant: 'static',
      header: 'X-Key',
      valueFrom: `env:${setEnv(staticSecret)}`,
    })
    await b.headersFor('crm', staticGrant, { principal })
    const exchanged = bearer(
      await b.headersFor(
        'crm',
        exchangeGrant({ clientId: 'gw', clientSecretFrom: `env:${setEnv(clientSecret)}` }),
        { principal, inboundToken },
      ),
    )
    const secrets = [staticSecret, clientSecret, inboundToken, exchanged]
    for (const s of secrets) expect(b.secretValues()).toContain(s)

    const log =
      `upstream said ${exchanged}; basic ${Buffer.from(`gw:${clientSecret}`).toString('base64')}; raw ${staticSecret}; ` +
      `b64 ${Buffer.from(staticSecret).toString('base64')}; url ${encodeURIComponent(inboundToken)} inbound ${inboundToken}`
    const redacted = b.redactor.redact(log)
    for (const s of secrets) expect(redacted).not.toContain(s)
    expect(redacted).not.toContain(Buffer.from(staticSecret).toString('base64'))
    expect(redacted).toContain('[REDACTED]')

    const record = b.redactor.redactJson({
      result: { text: `key=${staticSecret}` },
      logs: [exchanged],
      [clientSecret]: 1,
    })
    expect(JSON.stringify(record)).not.toMatch(
      new RegExp(secrets.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')),
    )
  })

  it('errors of a failed exchange carry no secret', async () => {
    const clientSecret = canary('client')
    idp.clients = { gw: clientSecret }
    idp.misbehave = 'status-500'
    const b = broker()
    const { principal, inboundToken } = await caller('alice')
    const logged = vi.fn()
    try {
      await b.headersFor(
        'crm',
        exchangeGrant({ clientId: 'gw', clientSecretFrom: `env:${setEnv(clientSecret)}` }),
        { principal, inboundToken },
      )
    } catch (err) {
      logged(`${String(err)} ${JSON.stringify(err)}`)
    }
    expect(logged).toHaveBeenCalledTimes(1)
    const text = String(logged.mock.calls[0]![0])
    expect(text).not.toContain(clientSecret)
    expect(text).not.toContain(inboundToken)
    expect(text).toMatch(/GRANT_FAILED|HTTP 500/)
  })
})
