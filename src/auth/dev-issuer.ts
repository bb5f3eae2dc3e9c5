/**
 * The development issuer behind the demo and `sluice token`: an ES256 key pair kept in a folder
 * (private JWK mode 0600, public JWKS beside it for `identity.issuers[].jwksFile`) and a `mint`
 * that signs access tokens. Not an authorization server; never for production.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT, type JSONWebKeySet, type JWK } from 'jose'
import { SluiceError } from '../errors.js'
import { generateSigningKey, importSigningKey, jwksOf, type GatewayKey } from './keys.js'

export const DEV_ISSUER_PRIVATE_FILE = 'dev-issuer.private.jwk.json'
export const DEV_ISSUER_JWKS_FILE = 'dev-issuer.jwks.json'
/**
 * Default `iss` of dev tokens; name it in `identity.issuers[].issuer`. A URL because RFC 9728
 * metadata lists issuers as URLs and strict clients (mcp-remote, the MCP SDK) refuse the whole
 * document otherwise. Under `.invalid` (RFC 6761, never resolves) because the dev issuer is no
 * authorization server: a client that tries to log in there fails at once, by name, instead of
 * reaching something that pretends to be one. Dev tokens are passed as a bearer header.
 * Dev tokens minted before carry `iss: sluice-dev-issuer`, which is no URL (README, "Dev tokens").
 */
export const DEFAULT_DEV_ISSUER = 'https://sluice.invalid/dev-issuer'
export const DEFAULT_DEV_TOKEN_TTL_SECONDS = 3600
/** Longest dev token lifetime (one day). */
export const MAX_DEV_TOKEN_TTL_SECONDS = 86_400

export interface DevIssuerOptions {
  /** Folder of the key files; created (mode 0700) if missing. */
  dir: string
  /** Default `iss` of minted tokens; default {@link DEFAULT_DEV_ISSUER}. */
  issuer?: string
}

export interface MintOptions {
  sub: string
  /** The gateway's `identity.audience`. */
  aud: string
  iss?: string
  scopes?: readonly string[]
  tenant?: string
  /** Claim that carries `tenant`; default `tenant` (match `identity.tenantClaim`). */
  tenantClaim?: string
  /** Default {@link DEFAULT_DEV_TOKEN_TTL_SECONDS}, at most {@link MAX_DEV_TOKEN_TTL_SECONDS}. */
  ttlSeconds?: number
  /** More claims; they cannot override `iss`, `sub`, `aud`, `exp`, `iat` or `jti`. */
  extra?: Record<string, unknown>
}

export interface DevIssuer {
  readonly issuer: string
  readonly dir: string
  readonly jwksFile: string
  readonly privateKeyFile: string
  readonly kid: string
  jwks(): JSONWebKeySet
  mint(options: MintOptions): Promise<string>
}

/** Creates the key pair in `dir` on first use, or loads it; refuses a private key readable by others. */
export async function createDevIssuer(options: DevIssuerOptions): Promise<DevIssuer> {
  const { dir } = options
  const issuer = options.issuer ?? DEFAULT_DEV_ISSUER
  const privateKeyFile = join(dir, DEV_ISSUER_PRIVATE_FILE)
  const jwksFile = join(dir, DEV_ISSUER_JWKS_FILE)
  mkdirSync(dir, { recursive: true, mode: 0o700 })

  let key: GatewayKey
  let existing: string | undefined
  try {
    existing = readFileSync(privateKeyFile, 'utf8')
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SluiceError('CONFIG_INVALID', `dev issuer: cannot read ${privateKeyFile}`, {
        cause,
      })
    }
  }
  if (existing !== undefined) {
    if (process.platform !== 'win32' && (statSync(privateKeyFile).mode & 0o077) !== 0) {
      throw new SluiceError(
        'CONFIG_INVALID',
        `dev issuer: ${privateKeyFile} is readable by others; run chmod 600 on it`,
      )
    }
    let jwk: JWK
    try {
      jwk = JSON.parse(existing) as JWK
    } catch (cause) {
      throw new SluiceError('CONFIG_INVALID', `dev issuer: ${privateKeyFile} is not a JSON JWK`, {
        cause,
      })
    }
    key = await importSigningKey(jwk, `dev issuer ${privateKeyFile}`)
  } else {
    const generated = await generateSigningKey()
    try {
      // `wx`: two processes racing to create the key must not overwrite each other's file.
      writeFileSync(privateKeyFile, `${JSON.stringify(generated.privateJwk, null, 2)}\n`, {
        mode: 0o600,
        flag: 'wx',
      })
      chmodSync(privateKeyFile, 0o600)
      key = generated.key
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new SluiceError('CONFIG_INVALID', `dev issuer: cannot write ${privateKeyFile}`, {
          cause,
        })
      }
      key = await importSigningKey(
        JSON.parse(readFileSync(privateKeyFile, 'utf8')) as JWK,
        `dev issuer ${privateKeyFile}`,
      )
    }
  }
  const jwks = jwksOf(key)
  writeFileSync(jwksFile, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o644 })

  async function mint(m: MintOptions): Promise<string> {
    const ttl = m.ttlSeconds ?? DEFAULT_DEV_TOKEN_TTL_SECONDS
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_DEV_TOKEN_TTL_SECONDS) {
      throw new SluiceError(
        'USAGE',
        `token lifetime must be 1..${MAX_DEV_TOKEN_TTL_SECONDS} seconds`,
      )
    }
    if (typeof m.sub !== 'string' || m.sub === '')
      throw new SluiceError('USAGE', 'a token needs a subject (sub)')
    if (typeof m.aud !== 'string' || m.aud === '')
      throw new SluiceError('USAGE', 'a token needs an audience (aud)')
    const claims: Record<string, unknown> = { ...(m.extra ?? {}) }
    if (m.scopes !== undefined && m.scopes.length > 0) claims['scope'] = m.scopes.join(' ')
    if (m.tenant !== undefined) claims[m.tenantClaim ?? 'tenant'] = m.tenant
    const iat = Math.floor(Date.now() / 1000)
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(m.iss ?? issuer)
      .setSubject(m.sub)
      .setAudience(m.aud)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl)
      .setJti(randomUUID())
      .sign(key.privateKey)
  }

  return {
    issuer,
    dir,
    jwksFile,
    privateKeyFile,
    kid: key.kid,
    jwks: () => jwksOf(key),
    mint,
  }
}
