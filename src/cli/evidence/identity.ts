/**
 * Identity domain: who may call, read from `identity` and the key files it names, and the TLS
 * settings for workload identity.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import type { Config } from '../../config/index.js'
import type { Control } from './types.js'
import { configName, message, shown } from './util.js'

export interface IdentityFacts {
  configured: boolean
  audience?: string
  issuers: Array<{ issuer: string; keys: string; algorithms: string[]; keyFile?: KeyFileFact }>
  tenantClaim?: string
  localSubject?: string
}

/** A `jwksFile` as parsed now: its key count, or why it cannot be used. */
export type KeyFileFact = { keys: number } | { error: string }

function keyFile(path: string): KeyFileFact {
  try {
    const jwks = JSON.parse(readFileSync(path, 'utf8')) as { keys?: unknown }
    if (!Array.isArray(jwks.keys)) return { error: 'not a JWKS (no "keys" array)' }
    return { keys: jwks.keys.length }
  } catch (cause) {
    const missing = (cause as { code?: unknown }).code === 'ENOENT'
    return { error: missing ? 'no such file' : message(cause) }
  }
}

export function identityFacts(config: Config): IdentityFacts {
  const id = config.identity
  if (id === undefined) return { configured: false, issuers: [] }
  return {
    configured: true,
    audience: id.audience,
    issuers: id.issuers.map((i) => ({
      issuer: i.issuer,
      keys: i.jwksUri ?? shown(i.jwksFile ?? ''),
      algorithms: [...i.algorithms],
      ...(i.jwksFile ? { keyFile: keyFile(i.jwksFile) } : {}),
    })),
    ...(id.tenantClaim ? { tenantClaim: id.tenantClaim } : {}),
    ...(id.local?.sub ? { localSubject: id.local.sub } : {}),
  }
}

function keyLine(i: IdentityFacts['issuers'][number]): string {
  const head = `issuer ${i.issuer}: keys ${i.keys} (${i.algorithms.join(', ')})`
  if (i.keyFile === undefined)
    return `${head}; fetched from the URI at first use (not fetched here)`
  if ('keys' in i.keyFile) return `${head}; the file holds ${i.keyFile.keys} key(s)`
  // A missing key file fails closed: every token from this issuer is refused until it exists.
  return `${head}; the file cannot be read (${i.keyFile.error}): tokens of this issuer are refused`
}

export function identityDomain(config: Config, id: IdentityFacts): Control[] {
  const tls = config.gateway.tls
  return [
    {
      id: 'IDN-1',
      domain: 'identity',
      control:
        'Callers are authenticated by verified JWTs (exact audience, asymmetric algorithms, required exp)',
      status: id.configured ? 'enforced' : 'absent',
      observed: `read identity in ${configName(config)}${id.issuers.some((i) => i.keyFile) ? '; parsed the jwksFile of each issuer' : ''}`,
      evidence: id.configured
        ? [
            `identity config in ${config.file ? shown(config.file) : '(inline config)'}: audience ${id.audience}`,
            ...id.issuers.map(keyLine),
            `clock tolerance ${config.identity!.clockToleranceSeconds} s, token size cap ${config.identity!.maxTokenBytes} bytes`,
            ...(id.tenantClaim ? [`tenant claim: ${id.tenantClaim}`] : []),
            ...(id.localSubject ? [`local principal for run/stdio: ${id.localSubject}`] : []),
          ]
        : ['no identity: `sluice serve` refuses to start except with --insecure-dev on loopback'],
    },
    {
      id: 'IDN-2',
      domain: 'identity',
      control:
        'Workload identity: mTLS client certificates when serving TLS; upstreams get their own audience-bound credentials',
      status: tls?.requestClientCert === true ? 'enforced' : id.configured ? 'partial' : 'absent',
      observed: `read gateway.tls and identity in ${configName(config)}`,
      evidence: [
        tls
          ? `TLS: cert ${shown(tls.certFile)}, client certificates ${tls.requestClientCert ? 'requested' : 'not requested'}`
          : 'TLS not configured (terminate TLS in front of the gateway)',
      ],
    },
  ]
}
