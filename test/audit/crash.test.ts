/**
 * AUD-04: a process killed mid-run (SIGKILL, no chance to clean up) leaves a log that verifies
 * up to its last complete record, holds every acknowledged record, and resumes cleanly.
 */
import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AuditLog, verifyAuditFile } from '../../src/audit/index.js'
import { tempDir } from './helpers.js'

let dir: string
let cleanup: () => void

beforeEach(() => {
  ;({ dir, cleanup } = tempDir())
})
afterEach(() => cleanup())

const root = resolve(import.meta.dirname, '../..')

/** Runs the append loop until `minSeq` is acknowledged, then SIGKILLs it; returns the last acknowledged seq. */
function appendUntilKilled(file: string, minSeq: number): Promise<number> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'test/audit/fixtures/append-loop.ts'), file],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let acknowledged = 0
    let stderr = ''
    let buffered = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const line of lines) acknowledged = Math.max(acknowledged, Number(line))
      if (acknowledged >= minSeq && child.exitCode === null && !child.killed) child.kill('SIGKILL')
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', fail)
    child.on('exit', (_code, signal) => {
      if (signal === 'SIGKILL') done(acknowledged)
      else fail(new Error(`append loop exited without being killed: ${stderr}`))
    })
  })
}

describe('AuditLog after SIGKILL', () => {
  it('AUD-04 verifies up to its last complete record, keeps every acknowledged record, and resumes', async () => {
    const file = join(dir, 'audit.jsonl')
    const acknowledged = await appendUntilKilled(file, 40)
    const report = await verifyAuditFile(file)
    expect(report.ok).toBe(true)
    expect(report.lastSeq).toBeGreaterThanOrEqual(acknowledged)
    expect(report.records).toBe(report.lastSeq)

    const log = await AuditLog.open({ file, fsync: true })
    try {
      const next = await log.append({ type: 'gateway.start' })
      expect(next.seq).toBe(report.lastSeq + (log.recovery ? 2 : 1))
    } finally {
      await log.close()
    }
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, warnings: [] })
  })

  it('AUD-04 survives being killed twice in a row', async () => {
    const file = join(dir, 'audit.jsonl')
    const first = await appendUntilKilled(file, 10)
    const second = await appendUntilKilled(file, first + 10)
    const report = await verifyAuditFile(file)
    expect(report.ok).toBe(true)
    expect(report.lastSeq).toBeGreaterThanOrEqual(second)
  })
})
