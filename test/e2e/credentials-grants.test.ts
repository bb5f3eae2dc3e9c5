/**
 * Upstream credentials end to end (issue 4, "Done when"): a local IdP + RFC 8693 STS, the real
 * gateway verifying the IdP's tokens, and a Streamable HTTP upstream (the http-recorder fixture)
 * that logs the Authorization header of every request it receives. Model code calls
 * `tools.<server>.whoami({})`; the upstream must receive its own audience-bound token (exchange),
 * a gateway-signed token (jwt) or the operator's secret (static), and never the caller's token.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import {
  createLocalJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  calculateJwkThumbprint,
  jwtVerify,
} from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { loadOrCreateGatewayKey, publicJwkOf } from '../../src/auth/index.js'
import { startIdp, type Idp } from '../helpers/idp.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'
import {
  connect,
  execute,
  startGateway,
  startHttpRecorder,
  waitForTools,
  type Gateway,
  type HttpRecorder,
} from './helpers.js'

const AUDIENCE = 'https://sluice.test/mcp'
const GATEWAY_ID = 'https://sluice.test'
const JWT_AUDIENCE = 'https://signed-upstream.test'
const POLICY = `
rules:
  - id: upstreams
    effect: allow
    when: tool.server in ["crm", "statics", "signed", "envheader"]
`

let idp: Idp
let recorder: HttpRecorder
let rt: TestRuntime
let gw: Gateway
let dir: string
let requestLog: string
let staticSecret: string
const staticEnv = `SLUICE_E2E_STATIC_${randomBytes(4).toString('hex').toUpperCase()}`
const headerEnv = `SLUICE_E2E_HEADER_${randomBytes(4).toString('hex').toUpperCase()}`
let headerSecret: string
let gatewayPublicJwks: { keys: unknown[] }
const clients: Client[] = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-grants-'))
  requestLog = join(dir, 'requests.jsonl')
  idp = await startIdp()
  recorder = await startHttpRecorder({ REQUEST_LOG: requestLog })
  // The gateway's own key, on disk so the test can tell the STS to trust its actor tokens.
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = await exportJWK(privateKey)
  const privateJwk = {
    ...jwk,
    kid: await calculateJwkThumbprint(publicJwkOf(jwk)),
    alg: 'ES256',
    use: 'sig',
  }
  const keyFile = join(dir, 'gateway.jwk.json')
  writeFileSync(keyFile, JSON.stringify(privateJwk), { mode: 0o600 })
  await loadOrCreateGatewayKey(keyFile) // fails here, not mid-test, if the file is unusable
  gatewayPublicJwks = { keys: [publicJwkOf(privateJwk)] }
  idp.trustActor(gatewayPublicJwks as Parameters<Idp['trustActor']>[0])
  staticSecret = `static-${randomBytes(18).toString('base64url')}`
  process.env[staticEnv] = staticSecret
  headerSecret = `header-${randomBytes(18).toString('base64url')}`
  process.env[headerEnv] = headerSecret

  rt = await testRuntime({
    policy: POLICY,
    config: {
      identity: {
        audience: AUDIENCE,
        issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }],
        tenantClaim: 'tenant',
      },
      gateway: { signingKeyFile: keyFile, issuer: GATEWAY_ID },
      servers: {
        crm: {
          url: recorder.url,
          credentials: {
            grant: 'token-exchange',
            tokenEndpoint: idp.tokenEndpoint,
            audience: recorder.url,
          },
        },
        statics: {
          url: recorder.url,
          credentials: { grant: 'static', header: 'x-static', valueFrom: `env:${staticEnv}` },
        },
        signed: {
          url: recorder.url,
          credentials: { grant: 'jwt', audience: JWT_AUDIENCE, ttlSeconds: 120 },
        },
        // A client-style config: the secret comes from the environment into a header.
        envheader: { url: recorder.url, headers: { Authorization: `Bearer \${${headerEnv}}` } },
      },
    },
  })
  await waitForTools(rt, ['crm', 'statics', 'signed', 'envheader'])
  gw = await startGateway(rt)
})
afterAll(async () => {
  await gw?.close()
  await rt?.close()
  await recorder?.close()
  await idp?.close()
  delete process.env[staticEnv]
  delete process.env[headerEnv]
  rmSync(dir, { recursive: true, force: true })
})
afterEach(async () => {
  idp.misbehave = 'none'
  for (const c of clients.splice(0)) await c.close()
})

interface LoggedRequest {
  http: string
  methods: string[]
  authorization: string | null
}

function requests(): LoggedRequest[] {
  if (!existsSync(requestLog)) return []
  return readFileSync(requestLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LoggedRequest)
}

/** Authorization headers of the tools/call requests logged since `from`. */
function callAuthorizations(from: number): Array<string | null> {
  return requests()
    .slice(from)
    .filter((r) => r.methods.includes('tools/call'))
    .map((r) => r.authorization)
}

async function userClient(
  sub: string,
  extra: Record<string, unknown> = {},
): Promise<{ client: Client; token: string }> {
  const token = await idp.mint({ sub, aud: AUDIENCE, scope: 'crm.read', ...extra })
  const client = await connect(gw.url, { token })
  clients.push(client)
  return { client, token }
}

describe('token exchange (RFC 8693) through the gateway', () => {
  it("sends the upstream its own audience-bound token naming the user and the gateway, never the caller's", async () => {
    const from = requests().length
    const { client, token } = await userClient('alice', { tenant: 'acme' })
    const out = await execute(client, 'return await tools.crm.whoami({})')
    expect(out.ok).toBe(true)
    // The model sees that a credential was sent, not the credential.
    expect(out.result).toMatchObject({ authorization: 'Bearer [REDACTED]' })

    const auths = callAuthorizations(from)
    expect(auths).toHaveLength(1)
    const sent = auths[0]!
    expect(sent.startsWith('Bearer ')).toBe(true)
    const upstreamToken = sent.slice('Bearer '.length)
    expect(upstreamToken).not.toBe(token)
    expect(Buffer.from(upstreamToken).equals(Buffer.from(token))).toBe(false)
    // Not anywhere in any request the upstream received (initialize, list, call).
    for (const r of requests()) expect(r.authorization ?? '').not.toContain(token)

    const { payload } = await jwtVerify(upstreamToken, createLocalJWKSet(idp.jwks()), {
      issuer: idp.issuer,
      audience: recorder.url,
    })
    expect(payload.aud).toBe(recorder.url)
    expect(payload.sub).toBe('alice')
    expect(payload['act']).toEqual({ sub: GATEWAY_ID })
    expect(payload['tenant']).toBe('acme')

    // The STS saw the caller's token as the subject and the gateway's own token as the actor.
    const exchange = idp.tokenRequests.at(-1)!
    expect(exchange.form['subject_token']).toBe(token)
    expect(exchange.form['audience']).toBe(recorder.url)
    expect(decodeJwt(exchange.form['actor_token']!).sub).toBe(GATEWAY_ID)
  })

  it("exchanges per user: bob's upstream token names bob", async () => {
    const from = requests().length
    const { client } = await userClient('bob')
    expect((await execute(client, 'return await tools.crm.whoami({})')).ok).toBe(true)
    const [sent] = callAuthorizations(from)
    expect(decodeJwt(sent!.slice(7)).sub).toBe('bob')
  })

  it("refuses an STS that hands back the caller's own token; the upstream never sees it", async () => {
    idp.misbehave = 'echo-subject'
    const from = requests().length
    const { client, token } = await userClient('carol')
    const out = await execute(client, 'return await tools.crm.whoami({})')
    expect(out.ok).toBe(false)
    expect(out.error?.code).toBe('TOOL_ERROR')
    expect(out.error?.message).toContain('credentials for server crm could not be obtained')
    expect(out.error?.message).toContain("the issued token is the caller's own token")
    expect(JSON.stringify(out)).not.toContain(token)
    expect(callAuthorizations(from)).toEqual([])
  })

  it('fails the call (never falls back to no credentials) when the STS refuses', async () => {
    idp.misbehave = 'invalid-target'
    const from = requests().length
    const { client } = await userClient('dave')
    const out = await execute(client, 'return await tools.crm.whoami({})')
    expect(out.error).toMatchObject({
      code: 'TOOL_ERROR',
      message: expect.stringContaining('HTTP 400 (invalid_target)'),
    })
    expect(callAuthorizations(from)).toEqual([])
  })
})

describe('static and gateway-signed grants through the gateway', () => {
  it("static: the upstream receives the operator's secret in its header; the model sees it redacted", async () => {
    const from = requests().length
    const { client, token } = await userClient('alice')
    const out = await execute(client, 'return await tools.statics.whoami({})')
    expect(out).toMatchObject({
      ok: true,
      result: { 'x-static': '[REDACTED]', authorization: null },
    })
    expect(JSON.stringify(out)).not.toContain(staticSecret)
    const logged = requests()
      .slice(from)
      .filter((r) => r.methods.includes('tools/call'))
    expect(logged).toHaveLength(1)
    expect(logged[0]!.authorization).toBeNull()
    for (const r of requests()) expect(r.authorization ?? '').not.toContain(token)
  })

  it('a header filled from the environment (`Bearer ${VAR}`) reaches the upstream; the model sees it redacted', async () => {
    const from = requests().length
    const { client } = await userClient('alice')
    const out = await execute(client, 'return await tools.envheader.whoami({})')
    // The whole header value is a registered form, so all of it goes.
    expect(out).toMatchObject({ ok: true, result: { authorization: '[REDACTED]' } })
    expect(JSON.stringify(out)).not.toContain(headerSecret)
    expect(callAuthorizations(from)).toEqual([`Bearer ${headerSecret}`])
  })

  it('jwt: the upstream receives a short-lived token the gateway signed for its audience', async () => {
    const from = requests().length
    const { client, token } = await userClient('alice', { tenant: 'acme' })
    const out = await execute(client, 'return await tools.signed.whoami({})')
    expect(out).toMatchObject({ ok: true, result: { authorization: 'Bearer [REDACTED]' } })
    const [sent] = callAuthorizations(from)
    const upstreamToken = sent!.slice('Bearer '.length)
    expect(upstreamToken).not.toBe(token)
    const { payload } = await jwtVerify(
      upstreamToken,
      createLocalJWKSet(gatewayPublicJwks as never),
      {
        issuer: GATEWAY_ID,
        audience: JWT_AUDIENCE,
      },
    )
    expect(payload.sub).toBe('alice')
    expect(payload['act']).toEqual({ sub: GATEWAY_ID })
    expect(payload['tenant']).toBe('acme')
    expect(payload.exp! - payload.iat!).toBe(120)
  })
})
