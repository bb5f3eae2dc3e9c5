/**
 * Signing keys the gateway owns: its own key (for `jwt` grants and token-exchange actor tokens)
 * and helpers shared with the dev issuer. Private key material stays in a non-extractable
 * `CryptoKey`; only the public JWK is ever handed out.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
} from 'jose'
import { SluiceError } from '../errors.js'

/** The algorithm of a generated gateway or dev-issuer key. */
export const DEFAULT_SIGNING_ALG = 'ES256'

export interface GatewayKey {
  readonly privateKey: CryptoKey
  /** The public half, with `kid`, `alg` and `use: sig`. */
  readonly publicJwk: Readonly<JWK>
  readonly kid: string
  readonly alg: string
  /** False for a key generated in memory: tokens it signed are unverifiable after a restart. */
  readonly persistent: boolean
}

export interface LoadGatewayKeyOptions {
  /** Told once when the key is generated in memory. Default: `process.emitWarning`. */
  warn?: (message: string) => void
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const

/** The public half of a JWK (private members dropped). */
export function publicJwkOf(jwk: JWK): JWK {
  const pub: Record<string, unknown> = { ...jwk }
  for (const member of PRIVATE_MEMBERS) delete pub[member]
  delete pub['key_ops']
  return pub as JWK
}

/** The JWS algorithm a private JWK signs with: its `alg`, else inferred from `kty`/`crv`. */
export function algorithmOf(jwk: JWK): string {
  if (typeof jwk.alg === 'string') return jwk.alg
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256'
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') return 'ES384'
  if (jwk.kty === 'EC' && jwk.crv === 'P-521') return 'ES512'
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA'
  if (jwk.kty === 'RSA') return 'RS256'
  throw new SluiceError(
    'CONFIG_INVALID',
    'signing key: cannot infer the algorithm (set "alg" in the JWK)',
  )
}

/** Imports a private JWK as a signing key; refuses symmetric and public-only keys. */
export async function importSigningKey(jwk: JWK, what: string): Promise<GatewayKey> {
  if (jwk.kty === 'oct')
    throw new SluiceError(
      'CONFIG_INVALID',
      `${what}: symmetric keys are refused; use an EC, OKP or RSA key`,
    )
  if (typeof jwk.d !== 'string')
    throw new SluiceError('CONFIG_INVALID', `${what}: expected a private JWK (with "d")`)
  const alg = algorithmOf(jwk)
  const publicPart = publicJwkOf(jwk)
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicPart))
  let privateKey: CryptoKey
  try {
    const imported = await importJWK(jwk, alg, { extractable: false })
    if (imported instanceof Uint8Array) throw new TypeError('symmetric key')
    privateKey = imported
  } catch (cause) {
    throw new SluiceError('CONFIG_INVALID', `${what}: not a usable ${alg} private key`, { cause })
  }
  return Object.freeze({
    privateKey,
    publicJwk: Object.freeze({ ...publicPart, kid, alg, use: 'sig' }),
    kid,
    alg,
    persistent: true,
  })
}

/** Generates a fresh key pair and returns it with its private JWK (for writing to disk). */
export async function generateSigningKey(
  alg = DEFAULT_SIGNING_ALG,
): Promise<{ key: GatewayKey; privateJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const pub = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(pub)
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' }
  const key = await importSigningKey(privateJwk, 'generated key')
  return { key, privateJwk }
}

/**
 * The gateway's signing key: a private JWK read from `file` (`gateway.signingKeyFile`), else an
 * ES256 key generated in memory (with a warning: tokens it signs do not survive a restart, and
 * upstreams must refetch `gatewayJwks()`).
 *
 * @throws SluiceError `CONFIG_INVALID` when the file is unreadable or not a private asymmetric JWK.
 */
export async function loadOrCreateGatewayKey(
  file?: string,
  options: LoadGatewayKeyOptions = {},
): Promise<GatewayKey> {
  if (file !== undefined) {
    let jwk: JWK
    try {
      jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK
    } catch (cause) {
      throw new SluiceError(
        'CONFIG_INVALID',
        `gateway.signingKeyFile: cannot read a JSON JWK from ${file}`,
        { cause },
      )
    }
    if (jwk === null || typeof jwk !== 'object') {
      throw new SluiceError('CONFIG_INVALID', `gateway.signingKeyFile: ${file} is not a JWK object`)
    }
    return importSigningKey(jwk, `gateway.signingKeyFile ${file}`)
  }
  const { key } = await generateSigningKey()
  const warn =
    options.warn ??
    ((message: string) => process.emitWarning(message, { code: 'SLUICE_EPHEMERAL_KEY' }))
  warn(
    'gateway.signingKeyFile is not set: using an in-memory ES256 key; tokens the gateway signs will not verify after a restart',
  )
  return Object.freeze({ ...key, persistent: false })
}

/** A JWKS holding the public halves of `keys`. */
export function jwksOf(...keys: GatewayKey[]): JSONWebKeySet {
  return { keys: keys.map((k) => ({ ...k.publicJwk })) }
}
