/** The gateway signing key and the dev issuer: key files, modes, minted tokens that the verifier accepts. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, generateKeyPair } from 'jose'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createDevIssuer,
  DEFAULT_DEV_ISSUER,
  createTokenVerifier,
  loadOrCreateGatewayKey,
} from '../../src/auth/index.js'
import { identitySchema } from '../../src/config/index.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-keys-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe('loadOrCreateGatewayKey', () => {
  it('generates an in-memory ES256 key and says tokens will not survive a restart', async () => {
    const warn = vi.fn()
    const key = await loadOrCreateGatewayKey(undefined, { warn })
    expect(key).toMatchObject({ alg: 'ES256', persistent: false })
    expect(key.publicJwk).toMatchObject({
      kty: 'EC',
      crv: 'P-256',
      kid: key.kid,
      alg: 'ES256',
      use: 'sig',
    })
    expect(key.publicJwk).not.toHaveProperty('d')
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/will not verify after a restart/))
  })

  it('loads a private JWK from a file', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { extractable: true })
    const file = join(dir, 'gw.jwk.json')
    writeFileSync(file, JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'gw-1' }))
    const key = await loadOrCreateGatewayKey(file)
    expect(key).toMatchObject({ alg: 'EdDSA', kid: 'gw-1', persistent: true })
  })

  it('refuses a symmetric key, a public key and an unreadable file', async () => {
    const file = join(dir, 'k.json')
    writeFileSync(file, JSON.stringify({ kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0' }))
    await expect(loadOrCreateGatewayKey(file)).rejects.toThrow(/symmetric keys are refused/)
    const { publicKey } = await generateKeyPair('ES256', { extractable: true })
    writeFileSync(file, JSON.stringify(await exportJWK(publicKey)))
    await expect(loadOrCreateGatewayKey(file)).rejects.toThrow(/expected a private JWK/)
    await expect(loadOrCreateGatewayKey(join(dir, 'missing.json'))).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    })
  })
})

describe('createDevIssuer', () => {
  it('creates the key pair (private 0600, JWKS beside it) and reuses it next time', async () => {
    const first = await createDevIssuer({ dir })
    expect(statSync(first.privateKeyFile).mode & 0o777).toBe(0o600)
    const jwks = JSON.parse(readFileSync(first.jwksFile, 'utf8')) as {
      keys: Array<Record<string, unknown>>
    }
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).not.toHaveProperty('d')
    const second = await createDevIssuer({ dir })
    expect(second.kid).toBe(first.kid)
  })

  it('mints tokens that the verifier accepts with jwksFile', async () => {
    const dev = await createDevIssuer({ dir })
    const aud = 'http://127.0.0.1:8787/mcp'
    const token = await dev.mint({
      sub: 'alice',
      aud,
      scopes: ['crm.read', 'crm.write'],
      tenant: 'acme',
      extra: { team: 'blue' },
    })
    const verifier = createTokenVerifier(
      identitySchema.parse({
        audience: aud,
        issuers: [
          { issuer: dev.issuer, jwksFile: dev.jwksFile, algorithms: ['ES256'], typ: 'at+jwt' },
        ],
        tenantClaim: 'tenant',
      }),
    )
    const p = await verifier.verify(`Bearer ${token}`)
    expect(p).toMatchObject({
      sub: 'alice',
      iss: DEFAULT_DEV_ISSUER,
      tenant: 'acme',
      scopes: ['crm.read', 'crm.write'],
      authMethod: 'jwt',
    })
    expect(p.claims['team']).toBe('blue')
  })

  it('extra claims cannot override the registered ones', async () => {
    const dev = await createDevIssuer({ dir })
    const token = await dev.mint({
      sub: 'alice',
      aud: 'a',
      extra: { sub: 'admin', iss: 'evil', aud: 'b' },
    })
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >
    expect(payload).toMatchObject({ sub: 'alice', iss: DEFAULT_DEV_ISSUER, aud: 'a' })
  })

  it('accepts a lifetime of 86400 s and refuses 86401 s', async () => {
    const dev = await createDevIssuer({ dir })
    await expect(dev.mint({ sub: 'a', aud: 'b', ttlSeconds: 86_400 })).resolves.toMatch(/^ey/)
    await expect(dev.mint({ sub: 'a', aud: 'b', ttlSeconds: 86_401 })).rejects.toThrow(
      'token lifetime must be 1..86400 seconds',
    )
  })

  it('refuses a private key file readable by others', async () => {
    const dev = await createDevIssuer({ dir })
    chmodSync(dev.privateKeyFile, 0o644)
    await expect(createDevIssuer({ dir })).rejects.toThrow(/is readable by others; run chmod 600/)
  })
})
