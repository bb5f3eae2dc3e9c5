/**
 * Helpers for the audit tests: temp dirs, a frozen clock, line-level file surgery, and a re-hasher
 * that rewrites a chain consistently (what an attacker without the signing key can do).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, exportJWK, type JWK } from 'jose'
import { AuditLog, hashRecord, type AuditLogOptions } from '../../src/audit/index.js'

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A clock that advances one second per call from a fixed instant, so files are deterministic. */
export function steppingClock(start = Date.parse('2026-01-01T00:00:00.000Z')): () => Date {
  let t = start
  return () => {
    t += 1000
    return new Date(t)
  }
}

/** Opens a log and appends `count` call decisions; returns the closed log's file. */
export async function writeLog(
  file: string,
  count: number,
  options: Partial<AuditLogOptions> = {},
): Promise<string> {
  const log = await AuditLog.open({ file, fsync: false, now: steppingClock(), ...options })
  try {
    for (let i = 0; i < count; i++) {
      await log.append({
        type: 'call.decision',
        executionId: `exec-${i}`,
        tool: 'crm.find',
        decision: 'allow',
        ruleId: 'r1',
      })
    }
  } finally {
    await log.close()
  }
  return file
}

export function readLines(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n')
}

export function writeLines(file: string, lines: readonly string[]): void {
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''))
}

/** Re-links and re-hashes every record after an edit, as someone without the signing key could. */
export function rehashChain(lines: readonly string[]): string[] {
  let prev: string | undefined
  let seq = 0
  return lines.map((line) => {
    const record = JSON.parse(line) as Record<string, unknown>
    if (prev !== undefined) {
      record.prev = prev
      record.seq = ++seq
    } else {
      seq = record.seq as number
    }
    record.hash = hashRecord(record)
    prev = record.hash as string
    return JSON.stringify(record)
  })
}

export async function es256Keys(kid = 'audit-1'): Promise<{ privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid },
    publicJwk: { ...(await exportJWK(publicKey)), kid },
  }
}
