/**
 * auth: inbound identity (bearer JWT, mTLS SPIFFE ID, the local principal), RFC 9728 metadata,
 * upstream credential grants (static, RFC 8693 token exchange, gateway-signed JWT), the redactor
 * of every secret seen, and the dev issuer.
 *
 * @module
 */
export {
  createTokenVerifier,
  ASYMMETRIC_ALGORITHMS,
  DEFAULT_JWKS_COOLDOWN_MS,
  DEFAULT_JWKS_CACHE_MAX_AGE_MS,
  DEFAULT_JWKS_TIMEOUT_MS,
  DEFAULT_VERIFIED_TOKEN_CACHE_MS,
  DEFAULT_VERIFIED_TOKEN_CACHE_ENTRIES,
} from './verifier.js'
export type { TokenVerifier, TokenVerifierOptions } from './verifier.js'
export {
  principalFromPeerCertificate,
  localPrincipal,
  parseSpiffeId,
  resourceMetadata,
  metadataAuthorizationServers,
  metadataWarnings,
  isIssuerUrl,
  isResourceUrl,
  wwwAuthenticate,
  DEFAULT_LOCAL_SUB,
  MAX_SPIFFE_ID_BYTES,
} from './principal.js'
export type {
  IdentityConfig,
  SpiffeId,
  PeerCertificateLike,
  PeerCertificateOptions,
  BearerError,
  WwwAuthenticateOptions,
} from './principal.js'
export {
  createGrantBroker,
  GRANT_TYPE_TOKEN_EXCHANGE,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  MAX_EXCHANGED_TOKEN_LIFETIME_SECONDS,
  MAX_TOKEN_RESPONSE_BYTES,
  MAX_CREDENTIAL_BYTES,
  ACTOR_TOKEN_TTL_SECONDS,
  DEFAULT_MAX_CACHED_TOKENS,
} from './grants.js'
export type { GrantBroker, GrantBrokerOptions, GrantContext } from './grants.js'
export { createRedactor, REDACTED, MIN_SECRET_LENGTH, DEFAULT_MAX_SECRETS } from './redactor.js'
export type { Redactor, RedactorOptions } from './redactor.js'
export { loadOrCreateGatewayKey, publicJwkOf, DEFAULT_SIGNING_ALG } from './keys.js'
export type { GatewayKey, LoadGatewayKeyOptions } from './keys.js'
export {
  createDevIssuer,
  DEV_ISSUER_PRIVATE_FILE,
  DEV_ISSUER_JWKS_FILE,
  DEFAULT_DEV_ISSUER,
  DEFAULT_DEV_TOKEN_TTL_SECONDS,
  MAX_DEV_TOKEN_TTL_SECONDS,
} from './dev-issuer.js'
export type { DevIssuer, DevIssuerOptions, MintOptions } from './dev-issuer.js'
