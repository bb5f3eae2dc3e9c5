/**
 * One writer per chain (src/audit/writer-lock.ts and AuditLog.open): the lock and its holder,
 * stale locks (a dead pid on this host, an untouched lock from elsewhere), a second writer that
 * writes a segment of its own or is refused, and a folder that verifies chain by chain.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AuditLog, discoverChains, verifyAuditChain } from '../../src/audit/index.js'
import { lockWriter, STALE_MS } from '../../src/audit/writer-lock.js'
import { ROOT } from '../helpers/runtime.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-writer-lock-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  })
  return Number(child.stdout)
}

describe('lockWriter', () => {
  it('takes a free lock, names the holder to the next taker, and is free again after release', async () => {
    const file = join(dir, 'audit.jsonl')
    const first = await lockWriter(file)
    expect(first.ok).toBe(true)
    const second = await lockWriter(file)
    expect(second).toMatchObject({ ok: false, holder: { pid: process.pid, host: hostname() } })
    if (first.ok) await first.lock.release()
    const third = await lockWriter(file)
    expect(third.ok).toBe(true)
    if (third.ok) await third.lock.release()
  })

  it('takes over a lock whose holder on this host is gone, and keeps the old one aside', async () => {
    const file = join(dir, 'audit.jsonl')
    writeFileSync(
      `${file}.lock`,
      JSON.stringify({ pid: deadPid(), host: hostname(), since: 'x', token: 'dead' }),
    )
    const taken = await lockWriter(file)
    expect(taken.ok).toBe(true)
    expect(readdirSync(dir).filter((n) => n.startsWith('audit.jsonl.lock.stale-'))).toHaveLength(1)
    if (taken.ok) await taken.lock.release()
  })

  it('respects a fresh lock from another host, and takes one untouched for longer than 30 s', async () => {
    const file = join(dir, 'audit.jsonl')
    const other = {
      pid: 1,
      host: 'another-host',
      since: '2026-12-04T00:00:00.000Z',
      token: 'other',
    }
    writeFileSync(`${file}.lock`, JSON.stringify(other))
    expect(await lockWriter(file)).toEqual({
      ok: false,
      holder: { pid: 1, host: 'another-host', since: '2026-12-04T00:00:00.000Z' },
    })
    const old = (Date.now() - STALE_MS - 1000) / 1000
    utimesSync(`${file}.lock`, old, old)
    const taken = await lockWriter(file)
    expect(taken.ok).toBe(true)
    if (taken.ok) await taken.lock.release()
  })
})

/** A child process that opens the log at `file`, appends one record and waits for stdin to close. */
function holder(file: string): Promise<{ stop(): Promise<void> }> {
  const audit = pathToFileURL(join(ROOT, 'src/audit/index.ts')).href
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { AuditLog } = await import(${JSON.stringify(audit)})
       const log = await AuditLog.open({ file: ${JSON.stringify(file)} })
       await log.append({ type: 'gateway.start' })
       process.stdout.write('OPEN\\n')
       process.stdin.resume()
       process.stdin.on('end', async () => { await log.close(); process.exit(0) })`,
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  )
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      if (c.toString().includes('OPEN')) {
        resolve({
          stop: () =>
            new Promise<void>((done) => {
              child.once('exit', () => done())
              child.stdin!.end()
            }),
        })
      }
    })
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)))
  })
}

describe('a second writer of the same chain', () => {
  it('writes a segment of its own beside it; the folder verifies, chain by chain', async () => {
    const file = join(dir, 'audit.jsonl')
    const other = await holder(file)
    try {
      const log = await AuditLog.open({ file })
      expect(log.file).toMatch(/audit\.\d{8}T\d{6}Z-\d+\.jsonl$/)
      expect(log.openWarnings[0]).toMatch(
        /^audit\.jsonl is being written by pid \d+ on .+ since .+: this process writes its own chain, audit\.\d{8}T\d{6}Z-\d+\.jsonl$/,
      )
      await log.append({ type: 'gateway.start' })
      await log.close()
    } finally {
      await other.stop()
    }
    const chains = await discoverChains(dir)
    expect(chains).toHaveLength(2)
    for (const chain of chains)
      expect(await verifyAuditChain(chain)).toMatchObject({ ok: true, records: 1 })
  })

  it('with onLocked: refuse, is refused with AUDIT_LOCKED naming the holder', async () => {
    const file = join(dir, 'audit.jsonl')
    const other = await holder(file)
    try {
      await expect(AuditLog.open({ file, onLocked: 'refuse' })).rejects.toMatchObject({
        code: 'AUDIT_LOCKED',
        message: expect.stringMatching(
          new RegExp(
            `^audit file ${file.replace(/[.]/g, '\\.')} is being written by pid \\d+ on .+ since .+: one writer per chain`,
          ),
        ),
      })
    } finally {
      await other.stop()
    }
  })

  it('after the holder closed, takes the chain itself and continues it', async () => {
    const file = join(dir, 'audit.jsonl')
    const other = await holder(file)
    await other.stop()
    const log = await AuditLog.open({ file })
    expect(log.file).toBe(file)
    await log.append({ type: 'gateway.start' })
    await log.close()
    expect(await verifyAuditChain([file])).toMatchObject({ ok: true, records: 2 })
  })
})
