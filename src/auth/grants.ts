/**
 * Credential grants: the headers the host adds to one upstream request, per server, for one
 * principal. The caller's own token never leaves the gateway (DESIGN.md §5.4): an upstream gets a
 * static secret from the operator, a token the gateway signs, or an RFC 8693 exchanged token
 * bound to that upstream's audience. Every secret value seen here is registered in the redactor.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'
import { decodeJwt, SignJWT, type JSONWebKeySet } from 'jose'
import { readSecretRef, type Grant } from '../config/index.js'
import { SluiceError, isSluiceError } from '../errors.js'
import type { Principal } from '../types.js'
import { jwksOf, type GatewayKey } from './keys.js'
import { createRedactor, type Redactor } from './redactor.js'

export const GRANT_TYPE_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt'

/** Longest `expires_in` accepted from a token endpoint (TX-03). */
export const MAX_EXCHANGED_TOKEN_LIFETIME_SECONDS = 24 * 60 * 60
/** Largest token-endpoint response read. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
/** Longest credential value put in a header. */
export const MAX_CREDENTIAL_BYTES = 16 * 1024
/** Lifetime of the actor token the gateway signs for one exchange. */
export const ACTOR_TOKEN_TTL_SECONDS = 60
/** Cached exchanged/signed tokens kept at most. */
export const DEFAULT_MAX_CACHED_TOKENS = 10_000

export interface GrantContext {
  readonly principal: Principal
  /** The caller's verified inbound bearer token (HTTP only); the `subject_token` of an exchange. */
  readonly inboundToken?: string
  readonly signal?: AbortSignal
}

export interface GrantBrokerOptions {
  /** Folder that `file:` secret references resolve against (the config's folder). */
  baseDir: string
  gatewayKey: GatewayKey
  /** `iss` of tokens the gateway signs. */
  gatewayIssuer: string
  /** The gateway's own identity: `sub` of actor tokens and `act.sub` of `jwt` grants. Default: `gatewayIssuer`. */
  gatewayId?: string
  /** Actor token source (`env:`/`file:`, e.g. a SPIFFE JWT-SVID file) instead of a self-signed JWT. */
  actorTokenFrom?: string
  /** Fetch used for token endpoints. Redirects are never followed. */
  fetch?: typeof fetch
  /** Share a redactor with the rest of the host; default: a new one. */
  redactor?: Redactor
  /** Bound of the token cache; default {@link DEFAULT_MAX_CACHED_TOKENS}. */
  maxCachedTokens?: number
}

export interface GrantBroker {
  /**
   * The headers to add to a request to `server` on behalf of `ctx.principal`.
   *
   * @throws SluiceError `GRANT_FAILED` with a sanitised message; never falls back to another grant.
   */
  headersFor(server: string, grant: Grant, ctx: GrantContext): Promise<Record<string, string>>
  /** The public keys of tokens the gateway signs, for upstreams to verify `jwt` grants. */
  gatewayJwks(): JSONWebKeySet
  /** Every secret value the broker has seen. */
  secretValues(): readonly string[]
  readonly redactor: Redactor
  /** Forgets cached tokens and static values (e.g. after a config reload). */
  clear(): void
}

interface CachedToken {
  readonly value: string
  /** Epoch ms after which the entry is not served. */
  readonly refreshAtMs: number
}

const grantFailed = (server: string, why: string, cause?: unknown): SluiceError =>
  new SluiceError(
    'GRANT_FAILED',
    `credentials for server "${server}": ${why}`,
    cause === undefined ? {} : { cause },
  )

// Header values must not be able to split or smuggle headers.
const HEADER_SAFE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

async function readCapped(response: Response, maxBytes: number): Promise<string | undefined> {
  if (response.body === null) return ''
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      if (total > maxBytes) return undefined
      chunks.push(value)
    }
  } finally {
    reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks).toString('utf8')
}

function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  server: string,
): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(grantFailed(server, 'the request was cancelled'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(grantFailed(server, 'the request was cancelled'))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** Creates the broker of upstream credentials. */
export function createGrantBroker(options: GrantBrokerOptions): GrantBroker {
  const { baseDir, gatewayKey, gatewayIssuer } = options
  const gatewayId = options.gatewayId ?? gatewayIssuer
  const doFetch = options.fetch ?? fetch
  const redactor = options.redactor ?? createRedactor()
  const maxCached = options.maxCachedTokens ?? DEFAULT_MAX_CACHED_TOKENS
  if (typeof gatewayIssuer !== 'string' || gatewayIssuer === '')
    throw new TypeError('gatewayIssuer must be a non-empty string')
  if (!Number.isInteger(maxCached) || maxCached < 1)
    throw new TypeError('maxCachedTokens must be a positive integer')

  const staticValues = new Map<string, string>()
  const cache = new Map<string, CachedToken>()
  const inflight = new Map<string, Promise<CachedToken>>()

  function remember(key: string, entry: CachedToken): void {
    cache.delete(key)
    cache.set(key, entry)
    if (cache.size <= maxCached) return
    const now = Date.now()
    for (const [k, v] of cache) if (v.refreshAtMs <= now) cache.delete(k)
    while (cache.size > maxCached) {
      const oldest = cache.keys().next().value
      if (oldest === undefined) break
      cache.delete(oldest)
    }
  }

  function readSecret(server: string, ref: string, what: string): string {
    let value: string
    try {
      value = readSecretRef(ref, baseDir)
    } catch (cause) {
      // The config module's message names the reference (env var or path), never the value.
      const why = isSluiceError(cause) ? cause.message : `cannot read ${what}`
      throw grantFailed(server, `${what}: ${why}`, cause)
    }
    redactor.add(value)
    return value
  }

  /** Single-flight: concurrent callers for the same key share one request; failures are not cached. */
  async function cached(
    key: string,
    server: string,
    signal: AbortSignal | undefined,
    produce: () => Promise<CachedToken>,
  ): Promise<string> {
    const hit = cache.get(key)
    if (hit !== undefined && hit.refreshAtMs > Date.now()) return hit.value
    let flight = inflight.get(key)
    if (flight === undefined) {
      flight = produce()
        .then((entry) => {
          if (entry.refreshAtMs > Date.now()) remember(key, entry)
          else cache.delete(key)
          return entry
        })
        .finally(() => inflight.delete(key))
      inflight.set(key, flight)
    }
    return (await raceAbort(flight, signal, server)).value
  }

  function principalKey(p: Principal): string {
    return JSON.stringify([p.tenant ?? null, p.iss, p.sub])
  }

  function staticHeaders(
    server: string,
    grant: Extract<Grant, { grant: 'static' }>,
  ): Record<string, string> {
    const key = `${server}\0${grant.valueFrom}`
    let value = staticValues.get(key)
    if (value === undefined) {
      value = readSecret(
        server,
        grant.valueFrom,
        grant.valueFrom.startsWith('env:') ? 'the static secret' : 'the static secret file',
      )
      staticValues.set(key, value)
    }
    const header = `${grant.prefix ?? ''}${value}`
    if (!HEADER_SAFE.test(header) || header.length > MAX_CREDENTIAL_BYTES) {
      throw grantFailed(
        server,
        'the static secret is not a valid header value (control characters or too long)',
      )
    }
    redactor.add(header)
    return { [grant.header]: header }
  }

  async function signJwtGrant(
    server: string,
    grant: Extract<Grant, { grant: 'jwt' }>,
    principal: Principal,
  ): Promise<CachedToken> {
    const iat = nowSeconds()
    const exp = iat + grant.ttlSeconds
    const claims: Record<string, unknown> = { act: { sub: gatewayId } }
    if (grant.scope !== undefined) claims['scope'] = grant.scope
    if (principal.tenant !== undefined) claims['tenant'] = principal.tenant
    let token: string
    try {
      token = await new SignJWT(claims)
        .setProtectedHeader({ alg: gatewayKey.alg, kid: gatewayKey.kid, typ: 'JWT' })
        .setIssuer(gatewayIssuer)
        .setSubject(principal.sub)
        .setAudience(grant.audience)
        .setIssuedAt(iat)
        .setNotBefore(iat)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(gatewayKey.privateKey)
    } catch (cause) {
      throw grantFailed(server, 'the gateway could not sign a token', cause)
    }
    redactor.add(token)
    // Refresh with a fifth of the lifetime left (at most 30 s), so a token never expires in flight.
    const marginSeconds = Math.min(30, Math.floor(grant.ttlSeconds / 5))
    return { value: token, refreshAtMs: (exp - marginSeconds) * 1000 }
  }

  async function actorToken(
    audience: string,
    server: string,
  ): Promise<{ token: string; type: string }> {
    if (options.actorTokenFrom !== undefined) {
      return {
        token: readSecret(server, options.actorTokenFrom, 'the actor token'),
        type: TOKEN_TYPE_JWT,
      }
    }
    const iat = nowSeconds()
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: gatewayKey.alg, kid: gatewayKey.kid, typ: 'JWT' })
      .setIssuer(gatewayIssuer)
      .setSubject(gatewayId)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ACTOR_TOKEN_TTL_SECONDS)
      .setJti(randomUUID())
      .sign(gatewayKey.privateKey)
    redactor.add(token)
    return { token, type: TOKEN_TYPE_JWT }
  }

  async function exchange(
    server: string,
    grant: Extract<Grant, { grant: 'token-exchange' }>,
    subjectToken: string,
  ): Promise<CachedToken> {
    const actor = await actorToken(grant.tokenEndpoint, server)
    const form = new URLSearchParams({
      grant_type: GRANT_TYPE_TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: TOKEN_TYPE_ACCESS_TOKEN,
      actor_token: actor.token,
      actor_token_type: actor.type,
      audience: grant.audience,
    })
    if (grant.resource !== undefined) form.set('resource', grant.resource)
    if (grant.scope !== undefined) form.set('scope', grant.scope)
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    }
    if (grant.clientId !== undefined && grant.clientSecretFrom !== undefined) {
      const secret = readSecret(server, grant.clientSecretFrom, 'the client secret')
      // RFC 6749 §2.3.1: form-urlencode both parts before base64.
      const basic = Buffer.from(
        `${encodeURIComponent(grant.clientId)}:${encodeURIComponent(secret)}`,
      ).toString('base64')
      redactor.add(basic)
      headers['authorization'] = `Basic ${basic}`
    } else if (grant.clientId !== undefined) {
      form.set('client_id', grant.clientId)
    }

    let response: Response
    try {
      response = await doFetch(grant.tokenEndpoint, {
        method: 'POST',
        headers,
        body: form.toString(),
        redirect: 'manual',
        signal: AbortSignal.timeout(grant.timeoutMs),
      })
    } catch (cause) {
      const timedOut =
        cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError')
      throw grantFailed(
        server,
        timedOut
          ? `the token endpoint did not answer within ${grant.timeoutMs} ms`
          : 'the token endpoint is unreachable',
        cause,
      )
    }
    const text = await readCapped(response, MAX_TOKEN_RESPONSE_BYTES).catch((cause: unknown) => {
      throw grantFailed(server, 'the token endpoint response could not be read', cause)
    })
    if (text === undefined)
      throw grantFailed(
        server,
        `the token endpoint response is larger than ${MAX_TOKEN_RESPONSE_BYTES} bytes`,
      )
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    const obj =
      body !== null && typeof body === 'object' && !Array.isArray(body)
        ? (body as Record<string, unknown>)
        : undefined

    if (response.status !== 200) {
      // Only a well-formed OAuth error code is repeated; descriptions can echo request material.
      const code = obj?.['error']
      const oauthError = typeof code === 'string' && /^[a-z_]{1,64}$/.test(code) ? ` (${code})` : ''
      throw grantFailed(
        server,
        `token exchange refused: the token endpoint answered HTTP ${response.status}${oauthError}`,
      )
    }
    if (obj === undefined)
      throw grantFailed(
        server,
        'token exchange failed: the token endpoint answered with no JSON object',
      )
    return validateExchangeResponse(server, grant, obj, subjectToken)
  }

  function validateExchangeResponse(
    server: string,
    grant: Extract<Grant, { grant: 'token-exchange' }>,
    body: Record<string, unknown>,
    subjectToken: string,
  ): CachedToken {
    const refuse = (why: string): SluiceError =>
      grantFailed(server, `token exchange response refused: ${why}`)
    const token = body['access_token']
    if (typeof token !== 'string' || token === '') throw refuse('no access_token')
    // Register before any further check, so even a refused token is scrubbed from every sink.
    redactor.add(token)
    if (token === subjectToken) throw refuse("the issued token is the caller's own token")
    if (!HEADER_SAFE.test(token) || token.length > MAX_CREDENTIAL_BYTES)
      throw refuse('access_token is not a valid bearer token')
    const issuedType = body['issued_token_type']
    if (issuedType !== TOKEN_TYPE_ACCESS_TOKEN && issuedType !== TOKEN_TYPE_JWT) {
      throw refuse('issued_token_type must be an access token or a JWT')
    }
    const tokenType = body['token_type']
    if (typeof tokenType !== 'string' || !['bearer', 'n_a'].includes(tokenType.toLowerCase())) {
      throw refuse('token_type must be Bearer or N_A')
    }
    const expiresIn = body['expires_in']
    if (expiresIn !== undefined) {
      if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0)
        throw refuse('expires_in is not a positive number')
      if (expiresIn > MAX_EXCHANGED_TOKEN_LIFETIME_SECONDS) {
        throw refuse(`expires_in exceeds ${MAX_EXCHANGED_TOKEN_LIFETIME_SECONDS} seconds`)
      }
    }
    const scope = body['scope']
    if (scope !== undefined) {
      if (typeof scope !== 'string') throw refuse('scope is not a string')
      if (grant.scope !== undefined) {
        const requested = new Set(grant.scope.split(' ').filter((s) => s !== ''))
        if (scope.split(' ').some((s) => s !== '' && !requested.has(s)))
          throw refuse('the granted scope is broader than requested')
      }
    }
    // A JWT's own audience is cheap to check unverified; it can only narrow what we accept.
    let claims: Record<string, unknown> | undefined
    try {
      claims = decodeJwt(token)
    } catch {
      claims = undefined
    }
    if (claims !== undefined && claims['aud'] !== undefined) {
      const aud = claims['aud']
      const auds = Array.isArray(aud) ? aud : [aud]
      const wanted = [grant.audience, ...(grant.resource === undefined ? [] : [grant.resource])]
      if (!auds.some((a) => wanted.includes(a as string)))
        throw refuse('the issued token is for another audience')
    }
    // Without expires_in nothing is cached: every call exchanges again.
    const refreshAtMs =
      expiresIn === undefined ? 0 : Date.now() + (expiresIn - grant.refreshSkewSeconds) * 1000
    return { value: token, refreshAtMs }
  }

  async function headersFor(
    server: string,
    grant: Grant,
    ctx: GrantContext,
  ): Promise<Record<string, string>> {
    if (ctx.inboundToken !== undefined) redactor.add(ctx.inboundToken)
    switch (grant.grant) {
      case 'static':
        return staticHeaders(server, grant)
      case 'jwt': {
        const key = JSON.stringify([
          'jwt',
          principalKey(ctx.principal),
          server,
          grant.audience,
          grant.scope ?? null,
          grant.ttlSeconds,
        ])
        const token = await cached(key, server, ctx.signal, () =>
          signJwtGrant(server, grant, ctx.principal),
        )
        return { authorization: `Bearer ${token}` }
      }
      case 'token-exchange': {
        const subjectToken = ctx.inboundToken
        if (subjectToken === undefined || subjectToken === '') {
          throw grantFailed(
            server,
            "token exchange needs the caller's bearer token, and this session has none (stdio and run have no inbound token); use a static or jwt grant for local use",
          )
        }
        const key = JSON.stringify([
          'tx',
          principalKey(ctx.principal),
          server,
          grant.tokenEndpoint,
          grant.audience,
          grant.resource ?? null,
          grant.scope ?? null,
        ])
        const token = await cached(key, server, ctx.signal, async () => {
          try {
            return await exchange(server, grant, subjectToken)
          } catch (cause) {
            throw isSluiceError(cause, 'GRANT_FAILED')
              ? cause
              : grantFailed(server, 'token exchange failed', cause)
          }
        })
        return { authorization: `Bearer ${token}` }
      }
      case 'env':
        // Environment variables reach a stdio server when it starts (upstream/); a call adds
        // no header.
        return {}
      case 'passthrough':
        throw grantFailed(
          server,
          'the "passthrough" grant is refused: the caller\'s token never leaves the gateway',
        )
      default: {
        const unknown: never = grant
        throw grantFailed(
          server,
          `unknown grant ${JSON.stringify((unknown as { grant?: unknown }).grant)}`,
        )
      }
    }
  }

  return {
    headersFor,
    gatewayJwks: () => jwksOf(gatewayKey),
    secretValues: () => redactor.values(),
    redactor,
    clear(): void {
      cache.clear()
      staticValues.clear()
    },
  }
}
