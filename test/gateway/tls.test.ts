/**
 * TLS and mTLS: with `gateway.tls.requestClientCert`, a request without a bearer token is the
 * client certificate's SPIFFE ID; a certificate that does not chain to the CA is refused.
 * Certificates are made by the openssl CLI in a temp dir.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp, listen } from '../../src/gateway/index.js'
import {
  INIT_BODY,
  MCP_HEADERS,
  fakeEngine,
  makeIdentity,
  messagesOf,
  type Identity,
} from './helpers.js'

let id: Identity
let app: FastifyInstance
let url: URL

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
}

function makeCert(dir: string, name: string, subject: string, san: string, ca?: string): void {
  const ext = join(dir, `${name}.ext`)
  writeFileSync(ext, `subjectAltName=${san}\n`)
  openssl(
    dir,
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  )
  const signer =
    ca === undefined
      ? ['-signkey', `${name}.key`]
      : ['-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial']
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    ...signer,
    '-out',
    `${name}.crt`,
    '-days',
    '1',
    '-extfile',
    ext,
  )
}

beforeAll(async () => {
  id = await makeIdentity()
  const d = id.dir
  openssl(
    d,
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
    'ca.crt',
    '-subj',
    '/CN=test-ca',
    '-days',
    '1',
  )
  makeCert(d, 'server', '/CN=localhost', 'IP:127.0.0.1,DNS:localhost', 'ca')
  makeCert(d, 'client', '/CN=web', 'URI:spiffe://example.org/ns/web', 'ca')
  makeCert(d, 'rogue', '/CN=web', 'URI:spiffe://example.org/ns/web')
  const config = id.config({
    tls: {
      certFile: 'server.crt',
      keyFile: 'server.key',
      caFile: 'ca.crt',
      requestClientCert: true,
    },
  })
  app = buildApp({ config, engine: fakeEngine() })
  url = new URL(await listen(app, { host: '127.0.0.1', port: 0, print: () => {} }))
})
afterAll(async () => {
  await app?.close()
  id.cleanup()
})

function post(
  cert: string | undefined,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const d = id.dir
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { ...MCP_HEADERS, ...headers },
        ca: readFileSync(join(d, 'ca.crt')),
        ...(cert === undefined
          ? {}
          : {
              cert: readFileSync(join(d, `${cert}.crt`)),
              key: readFileSync(join(d, `${cert}.key`)),
            }),
      },
      (res) => {
        let text = ''
        res
          .setEncoding('utf8')
          .on('data', (c: string) => (text += c))
          .on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
          )
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

describe('TLS', () => {
  it('listens on https and says so', () => {
    expect(url.protocol).toBe('https:')
  })

  it('takes the principal from a trusted client certificate when no token is sent', async () => {
    const init = await post('client', INIT_BODY)
    expect(init.status).toBe(200)
    const sid = String(init.headers['mcp-session-id'])
    const call = await post(
      'client',
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'execute_code', arguments: { code: 'who' } },
      },
      { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
    )
    expect(messagesOf(call.body)[0]).toMatchObject({
      result: { structuredContent: { result: { sub: 'spiffe://example.org/ns/web' } } },
    })
  })

  it('refuses a client certificate that does not chain to the CA', async () => {
    const res = await post('rogue', INIT_BODY)
    expect(res.status).toBe(401)
    expect(JSON.parse(res.body).error.message).toBe(
      'Unauthorized: the client certificate is not trusted',
    )
  })

  it('still asks for a token when there is no client certificate', async () => {
    const res = await post(undefined, INIT_BODY)
    expect(res.status).toBe(401)
    expect(res.headers['www-authenticate']).toBe(
      'Bearer resource_metadata="https://sluice.test/.well-known/oauth-protected-resource"',
    )
  })
})
