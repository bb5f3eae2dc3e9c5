/**
 * A tiny identity provider + RFC 8693 STS for tests, on 127.0.0.1:0 with node:http.
 * `/jwks.json` serves its keys (add/remove them to rotate); `/token` exchanges a subject token it
 * issued for one bound to the requested audience, with `act.sub` = the actor token's subject.
 * Every request is recorded, and the STS can be told to misbehave. Also: helpers that build
 * hostile tokens (`alg: none`, HS256 signed with a public key as the HMAC secret).
 */
import { createHmac, KeyObject, randomUUID, sign as nodeSign } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
} from 'jose'

export interface IdpKey {
  kid: string
  alg: string
  privateKey: CryptoKey
  publicKey: CryptoKey
  publicJwk: JWK
  /** SPKI PEM of the public key (what an HS/RS confusion attack uses as the HMAC secret). */
  publicPem: string
}

export type Misbehaviour =
  | 'none'
  | 'status-500'
  | 'invalid-target'
  | 'timeout'
  | 'broad-scope'
  | 'long-expiry'
  | 'wrong-token-type'
  | 'wrong-audience'
  | 'echo-subject'
  | 'not-json'
  | 'no-expiry'

export interface TokenRequest {
  form: Record<string, string>
  authorization: string | undefined
  contentType: string | undefined
}

export interface Idp {
  readonly url: string
  readonly issuer: string
  readonly jwksUri: string
  readonly tokenEndpoint: string
  /** Keys served in /jwks.json; the last one signs by default. */
  readonly keys: IdpKey[]
  /** Requests to /jwks.json so far. */
  jwksFetches: number
  readonly tokenRequests: TokenRequest[]
  misbehave: Misbehaviour
  addKey(alg?: string): Promise<IdpKey>
  removeKey(kid: string): void
  jwks(): JSONWebKeySet
  /** Trust these keys for actor tokens (e.g. `broker.gatewayJwks()`). */
  trustActor(jwks: JSONWebKeySet): void
  /** Clients allowed at /token (HTTP Basic); empty = no client auth required. */
  clients: Record<string, string>
  /** Signs a token; defaults: iss = this issuer, exp = now + 300, iat = now, kid = newest key. */
  mint(claims: JWTPayload, options?: MintOverrides): Promise<string>
  close(): Promise<void>
}

export interface MintOverrides {
  key?: IdpKey
  header?: Record<string, unknown>
  /** Omit `exp` entirely. */
  noExp?: boolean
}

export async function makeKey(alg = 'RS256'): Promise<IdpKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(jwk)
  return {
    kid,
    alg,
    privateKey,
    publicKey,
    publicJwk: { ...jwk, kid, alg, use: 'sig' },
    publicPem: await exportSPKI(publicKey),
  }
}

export function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString(
    'base64url',
  )
}

/** An unsigned token (`alg: none` by default) with an optional signature segment. */
export function unsignedToken(
  payload: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'none' },
  signature = '',
): string {
  return `${b64url(header)}.${b64url(payload)}.${signature}`
}

/** An HS256 token whose HMAC secret is `secret` (e.g. an RSA public key's PEM). */
export function hmacToken(
  secret: string | Buffer,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
): string {
  const input = `${b64url(header)}.${b64url(payload)}`
  const sig = createHmac('sha256', secret).update(input).digest('base64url')
  return `${input}.${sig}`
}

/**
 * Signs with an arbitrary protected header (the claims are used as given). Headers jose refuses
 * to produce (e.g. an unknown `crit`) are signed by hand with node:crypto.
 */
export async function signWith(
  key: IdpKey,
  payload: JWTPayload,
  header: Record<string, unknown> = {},
): Promise<string> {
  const protectedHeader = { alg: key.alg, kid: key.kid, ...header }
  if (!('crit' in header))
    return new SignJWT(payload).setProtectedHeader(protectedHeader).sign(key.privateKey)
  const input = `${b64url(protectedHeader)}.${b64url(payload)}`
  const hash = `sha${key.alg.slice(2)}`
  const sig = nodeSign(hash, Buffer.from(input), {
    key: KeyObject.from(key.privateKey),
    ...(key.alg.startsWith('ES') ? { dsaEncoding: 'ieee-p1363' as const } : {}),
  })
  return `${input}.${sig.toString('base64url')}`
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(JSON.stringify(body))
}

export interface StartIdpOptions {
  /** Algorithm of the first key; default RS256. */
  alg?: string
}

/** Starts the IdP on 127.0.0.1:0. Always `close()` it. */
export async function startIdp(options: StartIdpOptions = {}): Promise<Idp> {
  const keys: IdpKey[] = [await makeKey(options.alg ?? 'RS256')]
  let actorJwks: JSONWebKeySet = { keys: [] }
  const tokenRequests: TokenRequest[] = []
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const url = `http://127.0.0.1:${port}`

  const idp: Idp = {
    url,
    issuer: url,
    jwksUri: `${url}/jwks.json`,
    tokenEndpoint: `${url}/token`,
    keys,
    jwksFetches: 0,
    tokenRequests,
    misbehave: 'none',
    clients: {},
    async addKey(alg = 'RS256') {
      const key = await makeKey(alg)
      keys.push(key)
      return key
    },
    removeKey(kid) {
      const i = keys.findIndex((k) => k.kid === kid)
      if (i >= 0) keys.splice(i, 1)
    },
    jwks: () => ({ keys: keys.map((k) => ({ ...k.publicJwk })) }),
    trustActor(jwks) {
      actorJwks = jwks
    },
    async mint(claims, o = {}) {
      const key = o.key ?? keys[keys.length - 1]!
      const now = Math.floor(Date.now() / 1000)
      const payload: JWTPayload = {
        iss: url,
        iat: now,
        jti: randomUUID(),
        ...(o.noExp ? {} : { exp: now + 300 }),
        ...claims,
      }
      return signWith(key, payload, o.header ?? {})
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }

  async function token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req)
    const form = Object.fromEntries(new URLSearchParams(body))
    tokenRequests.push({
      form,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
    })
    const bad = (error: string): void =>
      json(res, 400, {
        error,
        error_description: `rejected subject ${form['subject_token'] ?? ''}`,
      })

    switch (idp.misbehave) {
      case 'status-500':
        res.writeHead(500, { 'content-type': 'text/plain' })
        res.end(`internal error; subject_token=${form['subject_token'] ?? ''}`)
        return
      case 'invalid-target':
        return bad('invalid_target')
      case 'timeout':
        return // never answers; close() destroys the socket
      case 'not-json':
        res.writeHead(200, { 'content-type': 'text/html' })
        res.end('<html>login</html>')
        return
      default:
        break
    }
    const clientIds = Object.keys(idp.clients)
    if (clientIds.length > 0) {
      const auth = req.headers.authorization ?? ''
      const decoded = auth.startsWith('Basic ')
        ? Buffer.from(auth.slice(6), 'base64').toString('utf8')
        : ''
      const [id, secret] = decoded.split(':').map((s) => decodeURIComponent(s))
      if (id === undefined || idp.clients[id] !== secret)
        return json(res, 401, { error: 'invalid_client' })
    }
    if (form['grant_type'] !== 'urn:ietf:params:oauth:grant-type:token-exchange')
      return bad('unsupported_grant_type')
    if (form['subject_token_type'] !== 'urn:ietf:params:oauth:token-type:access_token')
      return bad('invalid_request')
    let subject: JWTPayload
    try {
      ;({ payload: subject } = await jwtVerify(
        form['subject_token'] ?? '',
        createLocalJWKSet(idp.jwks()),
        { issuer: url },
      ))
    } catch {
      return bad('invalid_request')
    }
    let actorSub: string | undefined
    if (form['actor_token'] !== undefined) {
      if (form['actor_token_type'] === undefined) return bad('invalid_request')
      try {
        const { payload } = await jwtVerify(form['actor_token'], createLocalJWKSet(actorJwks), {
          audience: idp.tokenEndpoint,
        })
        actorSub = payload.sub
      } catch {
        return bad('invalid_request')
      }
    }
    const audience = form['audience']
    if (audience === undefined) return bad('invalid_target')
    const now = Math.floor(Date.now() / 1000)
    const lifetime = idp.misbehave === 'long-expiry' ? 30 * 86_400 : 300
    const scope =
      idp.misbehave === 'broad-scope' ? `${form['scope'] ?? ''} admin`.trim() : form['scope']
    const claims: JWTPayload = {
      sub: subject.sub,
      aud: idp.misbehave === 'wrong-audience' ? 'https://elsewhere.example' : audience,
      exp: now + lifetime,
      ...(actorSub === undefined ? {} : { act: { sub: actorSub } }),
      ...(scope === undefined ? {} : { scope }),
      ...(subject['tenant'] === undefined ? {} : { tenant: subject['tenant'] }),
    }
    const accessToken =
      idp.misbehave === 'echo-subject' ? form['subject_token'] : await idp.mint(claims)
    json(res, 200, {
      access_token: accessToken,
      issued_token_type:
        idp.misbehave === 'wrong-token-type'
          ? 'urn:ietf:params:oauth:token-type:refresh_token'
          : 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      ...(idp.misbehave === 'no-expiry' ? {} : { expires_in: lifetime }),
      ...(scope === undefined ? {} : { scope }),
    })
  }

  server.on('request', (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method === 'GET' && path === '/jwks.json') {
      idp.jwksFetches += 1
      return json(res, 200, idp.jwks())
    }
    if (req.method === 'POST' && path === '/token') {
      token(req, res).catch(() => json(res, 500, { error: 'server_error' }))
      return
    }
    json(res, 404, { error: 'not_found' })
  })
  return idp
}
