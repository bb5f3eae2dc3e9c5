/**
 * Tool governance domain: the lock file as read now, its digest, and its signature checked with
 * the configured key.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Config } from '../../config/index.js'
import { readLock, type LockFile } from '../../registry/index.js'
import type { Control, ControlStatus } from './types.js'
import { message, shown } from './util.js'

export interface LockFacts {
  file?: string
  sha256?: string
  generatedAt?: string
  signed: boolean
  signatureVerified: boolean
  pinnedTools: number
  allowUnpinned?: boolean
  loadError?: string
}

/** The facts, and the lock itself for the schema probe of the IO domain. */
export async function lockFacts(config: Config): Promise<{ facts: LockFacts; lock?: LockFile }> {
  if (!config.lock) return { facts: { signed: false, signatureVerified: false, pinnedTools: 0 } }
  const facts: LockFacts = {
    file: shown(config.lock.file),
    signed: false,
    signatureVerified: false,
    pinnedTools: 0,
    allowUnpinned: config.lock.allowUnpinned,
  }
  try {
    facts.sha256 = `sha256:${createHash('sha256').update(readFileSync(config.lock.file)).digest('hex')}`
    const lock = await readLock(
      config.lock.file,
      config.lock.publicKeyFile ? { publicKeyFile: config.lock.publicKeyFile } : {},
    )
    facts.generatedAt = lock.generatedAt
    facts.signed = lock.signature !== undefined
    // readLock throws on a bad signature when a key is configured, so reaching here means verified.
    facts.signatureVerified = config.lock.publicKeyFile !== undefined
    facts.pinnedTools = Object.values(lock.servers).reduce(
      (n, s) => n + Object.keys(s.tools).length,
      0,
    )
    return { facts, lock }
  } catch (cause) {
    facts.loadError = message(cause)
    return { facts }
  }
}

export function toolsDomain(config: Config, lock: LockFacts): Control[] {
  const evidence: string[] = []
  let status: ControlStatus = 'absent'
  const key = config.lock?.publicKeyFile
  const observed =
    lock.file === undefined
      ? 'read lock in the config: none'
      : `read ${lock.file}${key ? ` and checked its signature with ${shown(key)}` : ' (no publicKeyFile: signature not checked)'}`
  if (lock.file === undefined) {
    evidence.push('no lock: live tool definitions are used as listed (rug pulls are not detected)')
  } else if (lock.loadError) {
    evidence.push(`lock ${lock.file} does not load: ${lock.loadError}`)
  } else {
    evidence.push(
      `lock ${lock.file} (${lock.sha256}), generated ${lock.generatedAt}: ${lock.pinnedTools} pinned tools`,
      lock.signatureVerified
        ? `signature verified with ${shown(config.lock!.publicKeyFile!)}`
        : lock.signed
          ? 'lock is signed, but the signature is not checked (no publicKeyFile)'
          : 'lock is not signed',
      `unpinned tools ${lock.allowUnpinned ? 'exposed' : 'not exposed'}; changed tools quarantined`,
    )
    status = lock.signatureVerified ? 'enforced' : 'partial'
  }
  return [
    {
      id: 'TGV-1',
      domain: 'tool governance',
      control: 'Tool definitions are pinned (sha256) and signed; drift quarantines the tool',
      status,
      observed,
      evidence,
    },
  ]
}
