/**
 * Inbound identity: an `Authorization: Bearer` header → a verified JWT → a `Principal`.
 *
 * Order matters and follows RFC 8725 / RFC 9068 §4: header shape and size before any decoding;
 * the algorithm refused before any key lookup; the issuer chosen by exact `iss` among the
 * configured ones, each with its own pinned key set; then jose verifies signature, `iss`, `aud`,
 * `exp` (required), `nbf`, `typ`. Every failure is a `SluiceError` with a fixed message that never
 * contains the token or any attacker-chosen header value.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  type JWTPayload,
} from 'jose'
import { deepFreeze } from '../config/index.js'
import { SluiceError } from '../errors.js'
import type { Principal } from '../types.js'
import { parseSpiffeId, type IdentityConfig } from './principal.js'

/** The only algorithms sluice ever verifies with; `none` and `HS*` are refused whatever the config says. */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
])

/** Minimum time between two refetches of a key set caused by an unknown `kid`. */
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000
/** A fetched key set is refetched after this long even if every `kid` is known. */
export const DEFAULT_JWKS_CACHE_MAX_AGE_MS = 600_000
/** Time given to one JWKS fetch. */
export const DEFAULT_JWKS_TIMEOUT_MS = 2_000

export interface TokenVerifierOptions {
  /** Minimum time between refetches on an unknown `kid`; default {@link DEFAULT_JWKS_COOLDOWN_MS}. */
  jwksCooldownMs?: number
  /** Maximum age of a key set before it is refetched; default {@link DEFAULT_JWKS_CACHE_MAX_AGE_MS}. */
  jwksCacheMaxAgeMs?: number
  /** Timeout of one `jwksUri` fetch; default {@link DEFAULT_JWKS_TIMEOUT_MS}. */
  jwksTimeoutMs?: number
  /** Fetch used for `jwksUri` (tests, proxies). Redirects are never followed. */
  fetch?: typeof fetch
  /**
   * How long a verified token is remembered, so that a client's next request skips the signature
   * check (it cost ≈0.6 ms of CPU per request under load); never past the token's own `exp`.
   * 0 turns the cache off. Default {@link DEFAULT_VERIFIED_TOKEN_CACHE_MS}.
   */
  verifiedTokenCacheMs?: number
  /** At most this many verified tokens are remembered (least recently used go first). */
  verifiedTokenCacheEntries?: number
}

/**
 * A key removed from a JWKS stops verifying new tokens at once, and tokens it verified within this
 * long: the bound on how stale a cached verification can be.
 */
export const DEFAULT_VERIFIED_TOKEN_CACHE_MS = 60_000
export const DEFAULT_VERIFIED_TOKEN_CACHE_ENTRIES = 10_000

export interface TokenVerifier {
  /**
   * Verifies an `Authorization` header value (pass the array when the request carried several).
   *
   * @throws SluiceError `AUTH_REQUIRED` without a header; `AUTH_INVALID` for anything else wrong.
   */
  verify(authorizationHeader: string | readonly string[] | undefined): Promise<Principal>
}

type Issuer = IdentityConfig['issuers'][number]

interface IssuerVerifier {
  readonly issuer: string
  readonly keys: JWTVerifyGetKey
  /** The key set in use now, as text: a cached verification holds only while it is unchanged. */
  keySnapshot(): string
  readonly algorithms: string[]
  readonly typ: string | undefined
}

const fail = (message: string, cause?: unknown): SluiceError =>
  new SluiceError('AUTH_INVALID', message, cause === undefined ? {} : { cause })

// RFC 6750 §2.1 b64token, three dot-separated parts are checked after the size cap.
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i

function readJwksFile(path: string): JSONWebKeySet {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (cause) {
    throw new SluiceError(
      'CONFIG_INVALID',
      `identity: cannot read the key set ${path} (expected a JWKS JSON file)`,
      { cause },
    )
  }
  if (
    parsed === null ||
    typeof parsed !== 'object' ||
    !Array.isArray((parsed as { keys?: unknown }).keys)
  ) {
    throw new SluiceError(
      'CONFIG_INVALID',
      `identity: ${path} is not a JWKS (expected {"keys": [...]})`,
    )
  }
  return parsed as JSONWebKeySet
}

/** A key set read from a file once, re-read on an unknown `kid` at most once per cooldown. */
function fileKeySet(
  path: string,
  cooldownMs: number,
  maxAgeMs: number,
): { keys: JWTVerifyGetKey; snapshot(): string } {
  let jwks = readJwksFile(path)
  let snapshot = JSON.stringify(jwks)
  let local = createLocalJWKSet(jwks)
  let loadedAt = Date.now()
  const reload = (): void => {
    loadedAt = Date.now() // even on failure: a broken file must not cause a read per request
    jwks = readJwksFile(path)
    snapshot = JSON.stringify(jwks)
    local = createLocalJWKSet(jwks)
  }
  const keys: JWTVerifyGetKey = async (header, token) => {
    if (Date.now() >= loadedAt + maxAgeMs) reload()
    try {
      return await local(header, token)
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey && Date.now() >= loadedAt + cooldownMs) {
        reload()
        return local(header, token)
      }
      throw err
    }
  }
  return { keys, snapshot: () => snapshot }
}

function issuerVerifier(
  issuer: Issuer,
  options: Required<Omit<TokenVerifierOptions, 'fetch'>> & Pick<TokenVerifierOptions, 'fetch'>,
): IssuerVerifier {
  const algorithms = issuer.algorithms.filter((a) => ASYMMETRIC_ALGORITHMS.includes(a))
  if (algorithms.length === 0) {
    throw new SluiceError(
      'CONFIG_INVALID',
      `identity: issuer ${issuer.issuer} allows no asymmetric algorithm`,
    )
  }
  let keys: JWTVerifyGetKey
  let keySnapshot: () => string
  if (issuer.jwksFile !== undefined) {
    ;({ keys, snapshot: keySnapshot } = fileKeySet(
      issuer.jwksFile,
      options.jwksCooldownMs,
      options.jwksCacheMaxAgeMs,
    ))
  } else if (issuer.jwksUri !== undefined) {
    const remote = createRemoteJWKSet(new URL(issuer.jwksUri), {
      cooldownDuration: options.jwksCooldownMs,
      cacheMaxAge: options.jwksCacheMaxAgeMs,
      timeoutDuration: options.jwksTimeoutMs,
      ...(options.fetch === undefined
        ? {}
        : { [customFetch]: options.fetch as FetchImplementation }),
    })
    keySnapshot = () => JSON.stringify(remote.jwks() ?? null)
    // A refused connection surfaces as a bare TypeError from fetch; name it for what it is.
    keys = async (header, token) => {
      try {
        return await remote(header, token)
      } catch (err) {
        if (err instanceof errors.JOSEError) throw err
        throw fail('the issuer keys are unavailable', err)
      }
    }
  } else {
    throw new SluiceError(
      'CONFIG_INVALID',
      `identity: issuer ${issuer.issuer} needs jwksFile or jwksUri`,
    )
  }
  return { issuer: issuer.issuer, keys, keySnapshot, algorithms, typ: issuer.typ }
}

function mapJoseError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err
  if (err instanceof errors.JWTExpired) return fail('token has expired', err)
  if (err instanceof errors.JWTClaimValidationFailed) {
    const { claim, reason } = err
    if (reason === 'missing') return fail(`token lacks the required "${claim}" claim`, err)
    switch (claim) {
      case 'aud':
        return fail('token audience is not this gateway', err)
      case 'iss':
        return fail('token issuer is not trusted', err)
      case 'nbf':
        return fail('token is not valid yet (nbf)', err)
      case 'iat':
        return fail('token issue time (iat) is invalid', err)
      case 'typ':
        return fail('token type (typ header) is not accepted', err)
      case 'exp':
        return fail('token expiry (exp) is invalid', err)
      default:
        return fail('token has an invalid claim', err)
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('token algorithm is not allowed', err)
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return fail('token signature is invalid', err)
  if (err instanceof errors.JWKSNoMatchingKey)
    return fail('no key of the issuer matches the token', err)
  if (err instanceof errors.JWKSMultipleMatchingKeys) return fail('token signature is invalid', err)
  if (err instanceof errors.JWKSTimeout)
    return fail('the issuer keys could not be fetched in time', err)
  if (err instanceof errors.JOSENotSupported)
    return fail('token uses an unsupported header or algorithm', err)
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid)
    return fail('token is malformed', err)
  if (err instanceof errors.JOSEError) return fail('the issuer keys are unavailable', err)
  return fail('token could not be verified', err)
}

function scopesOf(payload: JWTPayload): string[] {
  const scope = payload['scope']
  if (typeof scope === 'string') return scope.split(' ').filter((s) => s !== '')
  const scp = payload['scp']
  if (Array.isArray(scp)) return scp.filter((s): s is string => typeof s === 'string')
  if (typeof scp === 'string') return scp.split(' ').filter((s) => s !== '')
  return []
}

/** Creates the verifier of inbound bearer tokens for one `identity:` config. */
export function createTokenVerifier(
  identity: IdentityConfig,
  options: TokenVerifierOptions = {},
): TokenVerifier {
  const resolved = {
    jwksCooldownMs: options.jwksCooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS,
    jwksCacheMaxAgeMs: options.jwksCacheMaxAgeMs ?? DEFAULT_JWKS_CACHE_MAX_AGE_MS,
    jwksTimeoutMs: options.jwksTimeoutMs ?? DEFAULT_JWKS_TIMEOUT_MS,
    verifiedTokenCacheMs: options.verifiedTokenCacheMs ?? DEFAULT_VERIFIED_TOKEN_CACHE_MS,
    verifiedTokenCacheEntries:
      options.verifiedTokenCacheEntries ?? DEFAULT_VERIFIED_TOKEN_CACHE_ENTRIES,
    fetch: options.fetch,
  }
  for (const [name, value] of Object.entries(resolved)) {
    if (name !== 'fetch' && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
      throw new TypeError(`${name} must be a non-negative integer`)
    }
  }
  const issuers = new Map<string, IssuerVerifier>()
  for (const issuer of identity.issuers)
    issuers.set(issuer.issuer, issuerVerifier(issuer, resolved))
  const audience = identity.audience
  const toleranceSeconds = identity.clockToleranceSeconds
  const maxTokenBytes = identity.maxTokenBytes

  function extractToken(header: string | readonly string[] | undefined): string {
    if (Array.isArray(header)) {
      if (header.length > 1) throw fail('send exactly one Authorization header')
      header = header[0]
    }
    if (header === undefined || header === '') {
      throw new SluiceError(
        'AUTH_REQUIRED',
        'authorization required: send "Authorization: Bearer <token>"',
      )
    }
    const value = header as string
    // The cap applies before any regex or decoding work on attacker bytes ("Bearer " is 7 bytes).
    if (value.length > maxTokenBytes + 7) throw fail(`token is larger than ${maxTokenBytes} bytes`)
    const match = BEARER.exec(value)
    if (match === null) {
      throw fail('malformed Authorization header: expected exactly "Bearer <token>" with one space')
    }
    const token = match[1]!
    if (token.length > maxTokenBytes) throw fail(`token is larger than ${maxTokenBytes} bytes`)
    const parts = token.split('.')
    if (parts.length === 5) throw fail('encrypted tokens (JWE) are not accepted')
    if (parts.length !== 3) throw fail('token is malformed')
    return token
  }

  const cache = new VerifiedTokens(
    resolved.verifiedTokenCacheMs,
    resolved.verifiedTokenCacheEntries,
    toleranceSeconds,
  )

  async function verify(header: string | readonly string[] | undefined): Promise<Principal> {
    const token = extractToken(header)
    const cached = cache.get(token)
    if (cached !== undefined) return cached
    const principal = await verifyToken(token)
    const issuer = issuers.get(principal.iss)
    if (issuer !== undefined) cache.set(token, principal, issuer.keySnapshot)
    return principal
  }

  async function verifyToken(token: string): Promise<Principal> {
    let alg: unknown
    let iss: unknown
    try {
      alg = decodeProtectedHeader(token).alg
      iss = decodeJwt(token).iss
    } catch (cause) {
      throw fail('token is malformed', cause)
    }
    if (typeof alg !== 'string' || !ASYMMETRIC_ALGORITHMS.includes(alg)) {
      throw fail('token algorithm is not allowed')
    }
    if (typeof iss !== 'string') throw fail('token lacks the required "iss" claim')
    const issuer = issuers.get(iss)
    if (issuer === undefined) throw fail('token issuer is not trusted')

    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, issuer.keys, {
        issuer: issuer.issuer,
        audience,
        algorithms: issuer.algorithms,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: toleranceSeconds,
        ...(issuer.typ === undefined ? {} : { typ: issuer.typ }),
      }))
    } catch (err) {
      throw mapJoseError(err)
    }
    // RFC 8707 replay guidance: a token for several resources is usable at each of them; refuse it.
    if (Array.isArray(payload.aud) && payload.aud.length !== 1) {
      throw fail('token audience must be exactly this gateway (multi-audience tokens are refused)')
    }
    // jose checks `iat` only with maxTokenAge; a token from the future is a forged clock or a bug.
    if (
      payload.iat !== undefined &&
      payload.iat > Math.floor(Date.now() / 1000) + toleranceSeconds
    ) {
      throw fail('token issue time (iat) is in the future')
    }
    const sub = payload.sub
    if (typeof sub !== 'string' || sub === '') throw fail('token lacks the required "sub" claim')
    if (sub.toLowerCase().startsWith('spiffe:')) parseSpiffeId(sub)

    let tenant: string | undefined
    if (identity.tenantClaim !== undefined) {
      const raw = payload[identity.tenantClaim]
      if (raw !== undefined && typeof raw !== 'string')
        throw fail('token tenant claim must be a string')
      tenant = raw
    }
    const principal: Principal = {
      sub,
      iss: issuer.issuer,
      ...(tenant === undefined ? {} : { tenant }),
      scopes: scopesOf(payload),
      claims: payload as Record<string, unknown>,
      authMethod: 'jwt',
    }
    return deepFreeze(principal)
  }

  return { verify }
}

/**
 * Tokens that verified, by their exact bytes, each until the earlier of its `exp` (with the
 * clock tolerance, as jose allows) and `ttlMs` after it was verified, and only while the issuer's
 * key set is the one that verified it. Only successes are kept, so attacker bytes never fill it;
 * a refused token is checked in full every time.
 */
class VerifiedTokens {
  readonly #entries = new Map<
    string,
    { principal: Principal; untilMs: number; keys: string; keySnapshot: () => string }
  >()

  readonly ttlMs: number
  readonly maxEntries: number
  readonly toleranceSeconds: number

  constructor(ttlMs: number, maxEntries: number, toleranceSeconds: number) {
    this.ttlMs = ttlMs
    this.maxEntries = maxEntries
    this.toleranceSeconds = toleranceSeconds
  }

  get(token: string): Principal | undefined {
    const entry = this.#entries.get(token)
    if (entry === undefined) return undefined
    this.#entries.delete(token)
    // A key set that changed since (a key removed, rotated) re-verifies every token it had passed.
    if (Date.now() >= entry.untilMs || entry.keySnapshot() !== entry.keys) return undefined
    // Re-inserted last: the Map's order is the recency order.
    this.#entries.set(token, entry)
    return entry.principal
  }

  set(token: string, principal: Principal, keySnapshot: () => string): void {
    if (this.ttlMs === 0 || this.maxEntries === 0) return
    const exp = principal.claims['exp']
    if (typeof exp !== 'number') return
    const untilMs = Math.min((exp + this.toleranceSeconds) * 1000, Date.now() + this.ttlMs)
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
    this.#entries.set(token, { principal, untilMs, keys: keySnapshot(), keySnapshot })
  }
}
