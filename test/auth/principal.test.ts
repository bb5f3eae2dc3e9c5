/**
 * Principals without a bearer token (mTLS SPIFFE ID, the local principal), SPIFFE ID syntax, and
 * the RFC 9728 / RFC 6750 surface.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, createServer, type PeerCertificate, type TLSSocket } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  localPrincipal,
  parseSpiffeId,
  principalFromPeerCertificate,
  resourceMetadata,
  metadataAuthorizationServers,
  metadataWarnings,
  isIssuerUrl,
  wwwAuthenticate,
} from '../../src/auth/index.js'
import { identitySchema } from '../../src/config/index.js'
import { isSluiceError } from '../../src/errors.js'

function authError(fn: () => unknown): { code: string; message: string } {
  try {
    fn()
  } catch (err) {
    if (isSluiceError(err)) return { code: err.code, message: err.message }
    throw err
  }
  throw new Error('expected a SluiceError')
}

describe('parseSpiffeId', () => {
  it('accepts a workload SPIFFE ID', () => {
    expect(parseSpiffeId('spiffe://example.org/ns/prod/sa/agent-1')).toEqual({
      trustDomain: 'example.org',
      path: '/ns/prod/sa/agent-1',
    })
  })

  it('rejects IDs that break the SPIFFE syntax, naming the problem', () => {
    const cases: Array<[string, string]> = [
      ['SPIFFE://example.org/a', 'invalid SPIFFE ID: the scheme must be "spiffe://" (lowercase)'],
      ['spiffe:///a', 'invalid SPIFFE ID: the trust domain is empty'],
      [
        'spiffe://Example.org/a',
        'invalid SPIFFE ID: the trust domain may hold only lowercase letters, digits, ".", "-" and "_"',
      ],
      [
        'spiffe://example.org:8080/a',
        'invalid SPIFFE ID: the trust domain may hold only lowercase letters, digits, ".", "-" and "_"',
      ],
      [
        'spiffe://user@example.org/a',
        'invalid SPIFFE ID: the trust domain may hold only lowercase letters, digits, ".", "-" and "_"',
      ],
      ['spiffe://example.org', 'invalid SPIFFE ID: a workload ID needs a path'],
      [
        'spiffe://example.org/a//b',
        'invalid SPIFFE ID: the path has an empty segment or a trailing "/"',
      ],
      [
        'spiffe://example.org/a/',
        'invalid SPIFFE ID: the path has an empty segment or a trailing "/"',
      ],
      ['spiffe://example.org/a/../b', 'invalid SPIFFE ID: the path has a "." or ".." segment'],
      [
        'spiffe://example.org/a?x=1',
        'invalid SPIFFE ID: path segments may hold only letters, digits, ".", "-" and "_"',
      ],
      [
        'spiffe://example.org/a#f',
        'invalid SPIFFE ID: path segments may hold only letters, digits, ".", "-" and "_"',
      ],
      [
        'spiffe://example.org/caf%C3%A9',
        'invalid SPIFFE ID: path segments may hold only letters, digits, ".", "-" and "_"',
      ],
    ]
    for (const [id, message] of cases)
      expect(authError(() => parseSpiffeId(id))).toEqual({ code: 'AUTH_INVALID', message })
  })

  it('accepts an ID of 2048 bytes and rejects 2049', () => {
    const base = 'spiffe://example.org/'
    const ok = base + 'a'.repeat(2048 - base.length)
    expect(parseSpiffeId(ok).trustDomain).toBe('example.org')
    expect(authError(() => parseSpiffeId(`${ok}a`)).message).toBe(
      'invalid SPIFFE ID: longer than 2048 bytes',
    )
  })
})

describe('principalFromPeerCertificate', () => {
  it('maps the SPIFFE URI SAN to an mtls principal', () => {
    const p = principalFromPeerCertificate(
      { subjectaltname: 'DNS:agent.example.org, URI:spiffe://example.org/ns/prod/sa/agent' },
      { authorized: true },
    )
    expect(p).toMatchObject({
      sub: 'spiffe://example.org/ns/prod/sa/agent',
      iss: 'spiffe://example.org',
      scopes: [],
      authMethod: 'mtls',
    })
    expect(p.claims['trust_domain']).toBe('example.org')
  })

  it('rejects a certificate with no URI SAN, several URI SANs, or an unauthorised chain', () => {
    expect(
      authError(() => principalFromPeerCertificate({ subjectaltname: 'DNS:a.example' })),
    ).toEqual({
      code: 'AUTH_INVALID',
      message: 'the client certificate has no SPIFFE URI SAN',
    })
    expect(
      authError(() =>
        principalFromPeerCertificate({
          subjectaltname: 'URI:spiffe://a.org/x, URI:spiffe://b.org/y',
        }),
      ).message,
    ).toBe('the client certificate has more than one URI SAN (an X.509-SVID has exactly one)')
    expect(
      authError(() =>
        principalFromPeerCertificate(
          { subjectaltname: 'URI:spiffe://a.org/x' },
          { authorized: false },
        ),
      ).message,
    ).toBe('the client certificate is not trusted')
    expect(
      authError(() => principalFromPeerCertificate({ subjectaltname: 'URI:https://a.org/x' }))
        .message,
    ).toBe('invalid SPIFFE ID: the scheme must be "spiffe://" (lowercase)')
    expect(authError(() => principalFromPeerCertificate({}))).toEqual({
      code: 'AUTH_REQUIRED',
      message: 'a client certificate is required',
    })
  })

  describe('with a real TLS handshake', () => {
    let dir: string
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-mtls-'))
      const run = (...args: string[]): void =>
        void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
      run(
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '1',
        '-subj',
        '/CN=test-ca',
      )
      run(
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'server.key',
        '-out',
        'server.csr',
        '-subj',
        '/CN=127.0.0.1',
      )
      writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n')
      run(
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'server.pem',
        '-days',
        '1',
        '-extfile',
        'server.ext',
      )
      run(
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'client.key',
        '-out',
        'client.csr',
        '-subj',
        '/CN=agent',
      )
      writeFileSync(
        join(dir, 'client.ext'),
        'subjectAltName=URI:spiffe://example.org/ns/prod/sa/agent\n',
      )
      run(
        'x509',
        '-req',
        '-in',
        'client.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'client.pem',
        '-days',
        '1',
        '-extfile',
        'client.ext',
      )
    })
    afterAll(() => rmSync(dir, { recursive: true, force: true }))

    it('reads the SPIFFE ID from the peer certificate Node presents', async () => {
      const read = (f: string): Buffer => readFileSync(join(dir, f))
      const seen = new Promise<{ cert: PeerCertificate; authorized: boolean }>((resolve) => {
        const server = createServer(
          {
            key: read('server.key'),
            cert: read('server.pem'),
            ca: read('ca.pem'),
            requestCert: true,
            rejectUnauthorized: true,
          },
          (socket: TLSSocket) => {
            resolve({ cert: socket.getPeerCertificate(), authorized: socket.authorized })
            socket.end()
            server.close()
          },
        )
        server.listen(0, '127.0.0.1', () => {
          const port = (server.address() as { port: number }).port
          const client = connect({
            host: '127.0.0.1',
            port,
            key: read('client.key'),
            cert: read('client.pem'),
            ca: read('ca.pem'),
          })
          client.on('error', () => {})
          client.on('end', () => client.destroy())
        })
      })
      const { cert, authorized } = await seen
      const p = principalFromPeerCertificate(cert, { authorized })
      expect(p.sub).toBe('spiffe://example.org/ns/prod/sa/agent')
      expect(p.authMethod).toBe('mtls')
    })
  })
})

describe('localPrincipal', () => {
  it('defaults to local-user with issuer local', () => {
    expect(localPrincipal()).toEqual({
      sub: 'local-user',
      iss: 'local',
      scopes: [],
      claims: { sub: 'local-user', iss: 'local' },
      authMethod: 'local',
    })
  })

  it('uses the configured sub, tenant, scopes and claims', () => {
    const identity = identitySchema.parse({
      audience: 'x',
      issuers: [{ issuer: 'i', jwksFile: 'j' }],
      local: { sub: 'ops', tenant: 'acme', scopes: ['crm.read'], claims: { team: 'blue' } },
    })
    const p = localPrincipal(identity.local)
    expect(p).toEqual({
      sub: 'ops',
      iss: 'local',
      tenant: 'acme',
      scopes: ['crm.read'],
      claims: { team: 'blue', sub: 'ops', iss: 'local' },
      authMethod: 'local',
    })
    expect(Object.isFrozen(p.scopes)).toBe(true)
  })
})

describe('resourceMetadata', () => {
  it('returns RFC 9728 metadata with the issuers as authorization servers by default', () => {
    const identity = identitySchema.parse({
      audience: 'http://127.0.0.1:8787/mcp',
      issuers: [{ issuer: 'https://idp.example', jwksFile: 'j' }],
    })
    expect(resourceMetadata(identity, 'http://127.0.0.1:8787/mcp')).toEqual({
      resource: 'http://127.0.0.1:8787/mcp',
      authorization_servers: ['https://idp.example'],
      bearer_methods_supported: ['header'],
    })
  })

  it('advertises configured authorization servers and scopes', () => {
    const identity = identitySchema.parse({
      audience: 'a',
      issuers: [{ issuer: 'https://idp.example', jwksFile: 'j' }],
      authorizationServers: ['https://as.example'],
      scopesSupported: ['crm.read'],
    })
    expect(resourceMetadata(identity, 'a')).toMatchObject({
      authorization_servers: ['https://as.example'],
      scopes_supported: ['crm.read'],
    })
  })
})

describe('metadata issuers', () => {
  const identity = (issuers: string[], more: Record<string, unknown> = {}) =>
    identitySchema.parse({
      audience: 'http://127.0.0.1:8787/mcp',
      issuers: issuers.map((issuer) => ({ issuer, jwksFile: 'j' })),
      ...more,
    })

  it('advertises the issuers that are URLs and names the others', () => {
    const id = identity(['https://idp.example', 'sluice-dev-issuer', 'https://idp.example'])
    expect(metadataAuthorizationServers(id)).toEqual({
      servers: ['https://idp.example'],
      omitted: ['sluice-dev-issuer'],
    })
    expect(metadataWarnings(id)).toEqual([
      'identity.issuers: issuer "sluice-dev-issuer" is not a URL, so it is left out of authorization_servers in /.well-known/oauth-protected-resource (its tokens still verify; clients that log in need an issuer URL such as https://idp.example.com)',
    ])
    expect(resourceMetadata(identity(['sluice-dev-issuer']), 'http://127.0.0.1:8787/mcp')).toEqual({
      resource: 'http://127.0.0.1:8787/mcp',
      bearer_methods_supported: ['header'],
    })
  })

  it('accepts issuer URLs only: http(s), no query, no fragment', () => {
    expect(isIssuerUrl('https://sluice.invalid/dev-issuer')).toBe(true)
    expect(isIssuerUrl('http://127.0.0.1:9000/')).toBe(true)
    for (const bad of [
      'sluice-dev-issuer',
      'urn:idp',
      'https://idp.example/?a=1',
      'https://idp.example/#x',
      'javascript:alert(1)',
    ])
      expect(isIssuerUrl(bad), bad).toBe(false)
  })

  it('refuses configured authorizationServers that are no issuer URL, naming the path', () => {
    const parsed = identitySchema.safeParse({
      audience: 'a',
      issuers: [{ issuer: 'https://idp.example', jwksFile: 'j' }],
      authorizationServers: ['https://as.example', 'as-without-scheme'],
    })
    expect(parsed.success).toBe(false)
    expect(parsed.error?.issues).toMatchObject([
      {
        path: ['authorizationServers', 1],
        message:
          'expected an issuer URL such as https://idp.example.com (http or https, no query or fragment)',
      },
    ])
  })

  it('warns about an audience that is no URL', () => {
    expect(metadataWarnings(identity(['https://idp.example'], { audience: 'gw' }))).toEqual([
      'identity.audience: "gw" is not a URL; RFC 9728 metadata names the gateway\'s /mcp URL as its resource instead',
    ])
  })
})

describe('wwwAuthenticate', () => {
  const url = 'http://127.0.0.1:8787/.well-known/oauth-protected-resource/mcp'

  it('names the metadata URL, and the error when a token was presented', () => {
    expect(wwwAuthenticate(url)).toBe(`Bearer resource_metadata="${url}"`)
    expect(wwwAuthenticate(url, 'invalid_token')).toBe(
      `Bearer resource_metadata="${url}", error="invalid_token"`,
    )
    expect(wwwAuthenticate(url, 'insufficient_scope', { scope: 'crm.write' })).toBe(
      `Bearer resource_metadata="${url}", error="insufficient_scope", scope="crm.write"`,
    )
  })

  it('cannot be split by quotes or line breaks in a description', () => {
    const value = wwwAuthenticate(url, 'invalid_token', { description: 'bad "token"\r\nX-Evil: 1' })
    expect(value).toBe(
      `Bearer resource_metadata="${url}", error="invalid_token", error_description="bad tokenX-Evil: 1"`,
    )
  })
})
