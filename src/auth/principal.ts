/**
 * Principals that do not come from a bearer token (a client certificate's SPIFFE ID, the
 * config-named local principal), SPIFFE ID syntax, and the RFC 9728 / RFC 6750 surface the
 * gateway shows to clients that have no (valid) token.
 *
 * @module
 */
import { deepFreeze, type Config } from '../config/index.js'
import { SluiceError } from '../errors.js'
import type { JsonObject, Principal } from '../types.js'

/** The `identity:` section of a config, when present. */
export type IdentityConfig = NonNullable<Config['identity']>

/** The subject of {@link localPrincipal} when the config names none. */
export const DEFAULT_LOCAL_SUB = 'local-user'

/** SPIFFE IDs longer than this are refused (the SPIFFE ID spec's URI limit). */
export const MAX_SPIFFE_ID_BYTES = 2048

export interface SpiffeId {
  readonly trustDomain: string
  /** The path, starting with `/`. */
  readonly path: string
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/

/**
 * Parses a SPIFFE ID (`spiffe://trust-domain/path`) per the SPIFFE ID spec: lowercase trust domain
 * of `[a-z0-9._-]`, path segments of `[A-Za-z0-9._-]`, no empty, `.` or `..` segments, no query,
 * fragment, port or userinfo. A workload ID needs a path.
 *
 * @throws SluiceError `AUTH_INVALID` naming what is wrong (never echoing the ID).
 */
export function parseSpiffeId(id: string): SpiffeId {
  const invalid = (why: string): SluiceError =>
    new SluiceError('AUTH_INVALID', `invalid SPIFFE ID: ${why}`)
  if (Buffer.byteLength(id, 'utf8') > MAX_SPIFFE_ID_BYTES)
    throw invalid(`longer than ${MAX_SPIFFE_ID_BYTES} bytes`)
  if (!id.startsWith('spiffe://')) throw invalid('the scheme must be "spiffe://" (lowercase)')
  const rest = id.slice('spiffe://'.length)
  const slash = rest.indexOf('/')
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash)
  if (trustDomain === '') throw invalid('the trust domain is empty')
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw invalid('the trust domain may hold only lowercase letters, digits, ".", "-" and "_"')
  }
  if (path === '') throw invalid('a workload ID needs a path')
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') throw invalid('the path has an empty segment or a trailing "/"')
    if (segment === '.' || segment === '..') throw invalid('the path has a "." or ".." segment')
    if (!PATH_SEGMENT.test(segment)) {
      throw invalid('path segments may hold only letters, digits, ".", "-" and "_"')
    }
  }
  return { trustDomain, path }
}

/** The part of a Node `tls.PeerCertificate` this module reads. */
export interface PeerCertificateLike {
  /** e.g. `URI:spiffe://example.org/ns/web, DNS:web.example.org` */
  readonly subjectaltname?: string | undefined
  readonly fingerprint256?: string | undefined
}

export interface PeerCertificateOptions {
  /**
   * `tlsSocket.authorized`. Pass it: a certificate that did not chain to the configured CA proves
   * nothing, and `false` is refused.
   */
  authorized?: boolean
}

/**
 * The principal of an mTLS client, from the certificate's single SPIFFE URI SAN (X.509-SVID).
 *
 * @throws SluiceError `AUTH_REQUIRED` without a certificate; `AUTH_INVALID` when it is
 *   unauthorised, has no or several URI SANs, or the URI is not a valid SPIFFE ID.
 */
export function principalFromPeerCertificate(
  cert: PeerCertificateLike | null | undefined,
  options: PeerCertificateOptions = {},
): Principal {
  if (cert === null || cert === undefined || Object.keys(cert).length === 0) {
    throw new SluiceError('AUTH_REQUIRED', 'a client certificate is required')
  }
  if (options.authorized === false) {
    throw new SluiceError('AUTH_INVALID', 'the client certificate is not trusted')
  }
  const uris = (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4))
  if (uris.length === 0) {
    throw new SluiceError('AUTH_INVALID', 'the client certificate has no SPIFFE URI SAN')
  }
  if (uris.length > 1) {
    throw new SluiceError(
      'AUTH_INVALID',
      'the client certificate has more than one URI SAN (an X.509-SVID has exactly one)',
    )
  }
  const sub = uris[0]!
  const { trustDomain } = parseSpiffeId(sub)
  const claims: Record<string, unknown> = { sub, trust_domain: trustDomain }
  if (cert.fingerprint256 !== undefined) claims['x5t#S256'] = cert.fingerprint256
  return deepFreeze({
    sub,
    iss: `spiffe://${trustDomain}`,
    scopes: [],
    claims,
    authMethod: 'mtls',
  } satisfies Principal)
}

/** The principal of `sluice stdio` and `sluice run`, named by `identity.local` (default `local-user`). */
export function localPrincipal(local?: IdentityConfig['local']): Principal {
  const sub = local?.sub ?? DEFAULT_LOCAL_SUB
  const principal: Principal = {
    sub,
    iss: 'local',
    ...(local?.tenant === undefined ? {} : { tenant: local.tenant }),
    scopes: [...(local?.scopes ?? [])],
    claims: { ...(local?.claims ?? {}), sub, iss: 'local' },
    authMethod: 'local',
  }
  return deepFreeze(principal)
}

/**
 * Whether `value` can stand as an OAuth issuer identifier in RFC 9728 `authorization_servers`:
 * an absolute http(s) URL without query or fragment (RFC 8414 §2). Strict clients (the MCP SDK's
 * `OAuthProtectedResourceMetadataSchema`, mcp-remote) refuse the whole document otherwise.
 */
export function isIssuerUrl(value: string): boolean {
  if (!URL.canParse(value)) return false
  const url = new URL(value)
  return (url.protocol === 'https:' || url.protocol === 'http:') && !url.search && !url.hash
}

/** Whether `value` can be RFC 9728 `resource`: an absolute http(s) URL without fragment (RFC 8707). */
export function isResourceUrl(value: string): boolean {
  if (!URL.canParse(value)) return false
  const url = new URL(value)
  return (url.protocol === 'https:' || url.protocol === 'http:') && !url.hash
}

/**
 * The authorization servers the metadata advertises, and the issuers left out of it.
 * `identity.authorizationServers` is checked to be URLs when the config loads; without it, the
 * issuers stand in, and an issuer that is no URL (a JWT `iss` may be any string) is left out
 * rather than break every strict client: its tokens still verify, the operator is warned.
 */
export function metadataAuthorizationServers(identity: IdentityConfig): {
  servers: string[]
  omitted: string[]
} {
  if (identity.authorizationServers !== undefined)
    return { servers: [...identity.authorizationServers], omitted: [] }
  const issuers = [...new Set(identity.issuers.map((i) => i.issuer))]
  return {
    servers: issuers.filter(isIssuerUrl),
    omitted: issuers.filter((i) => !isIssuerUrl(i)),
  }
}

/**
 * What a start-up should warn about the RFC 9728 surface: issuers left out of the metadata and an
 * audience that is no URL (then `resource` is the gateway's own `/mcp` URL, which tokens do not
 * carry as their audience).
 */
export function metadataWarnings(identity: IdentityConfig): string[] {
  const warnings = metadataAuthorizationServers(identity).omitted.map(
    (issuer) =>
      `identity.issuers: issuer ${JSON.stringify(issuer)} is not a URL, so it is left out of authorization_servers in /.well-known/oauth-protected-resource (its tokens still verify; clients that log in need an issuer URL such as https://idp.example.com)`,
  )
  if (!isResourceUrl(identity.audience)) {
    warnings.push(
      `identity.audience: ${JSON.stringify(identity.audience)} is not a URL; RFC 9728 metadata names the gateway's /mcp URL as its resource instead`,
    )
  }
  return warnings
}

/**
 * RFC 9728 protected resource metadata for `GET /.well-known/oauth-protected-resource`.
 * `resourceUrl` must be the gateway's canonical resource URI (normally `identity.audience`):
 * clients refuse metadata whose `resource` differs from the URI they asked about (§3.3).
 * `authorization_servers` holds issuer URLs only, and is absent when there is none.
 */
export function resourceMetadata(identity: IdentityConfig, resourceUrl: string): JsonObject {
  const { servers } = metadataAuthorizationServers(identity)
  const metadata: JsonObject = {
    resource: resourceUrl,
    ...(servers.length === 0 ? {} : { authorization_servers: servers }),
    bearer_methods_supported: ['header'],
  }
  if (identity.scopesSupported !== undefined)
    metadata['scopes_supported'] = [...identity.scopesSupported]
  return metadata
}

export type BearerError = 'invalid_request' | 'invalid_token' | 'insufficient_scope'

export interface WwwAuthenticateOptions {
  /** Space-separated scopes needed (with `insufficient_scope`). */
  scope?: string
  /** A safe, human-readable reason (e.g. a SluiceError message). */
  description?: string
}

// RFC 6750 §3: quoted-string values exclude `"` and `\`; we also drop controls and non-ASCII so
// nothing can split the header.
function quoted(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]|["\\]/g, '')}"`
}

/**
 * The `WWW-Authenticate` value of a 401/403: `Bearer resource_metadata="…"`, plus
 * `error="invalid_token"` (or another RFC 6750 error) when a token was presented.
 */
export function wwwAuthenticate(
  resourceMetadataUrl: string,
  error?: BearerError,
  options: WwwAuthenticateOptions = {},
): string {
  const params = [`resource_metadata=${quoted(resourceMetadataUrl)}`]
  if (error !== undefined) params.push(`error=${quoted(error)}`)
  if (error !== undefined && options.description !== undefined) {
    params.push(`error_description=${quoted(options.description)}`)
  }
  if (options.scope !== undefined) params.push(`scope=${quoted(options.scope)}`)
  return `Bearer ${params.join(', ')}`
}
