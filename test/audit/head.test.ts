/**
 * The chain head (`<file>.head.json`): written on close and within a second of appends, signed
 * when a key is configured; a deleted tail is then detected by plain verify (no `--expect`), a
 * writer refuses to continue such a chain, and a head rewritten without the key is caught.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AuditLog, verifyAuditChain } from '../../src/audit/index.js'
import { HEAD_EVERY_MS } from '../../src/audit/audit-log.js'
import { es256Keys, readLines, tempDir, writeLines, writeLog } from './helpers.js'

let tmp: ReturnType<typeof tempDir>
let file: string
beforeEach(() => {
  tmp = tempDir()
  file = join(tmp.dir, 'audit.jsonl')
})
afterEach(() => {
  tmp.cleanup()
})

const head = () =>
  JSON.parse(readFileSync(`${file}.head.json`, 'utf8')) as {
    seq: number
    hash: string
    sig?: string
  } & Record<string, unknown>

describe('the chain head', () => {
  it('names the last record on close; the chain verifies against it', async () => {
    await writeLog(file, 5)
    const last = JSON.parse(readLines(file).at(-1)!) as { seq: number; hash: string }
    expect(head()).toMatchObject({ file: 'audit.jsonl', seq: last.seq, hash: last.hash })
    expect(head().sig).toBeUndefined()
    expect(await verifyAuditChain([file])).toMatchObject({ ok: true, records: 5, warnings: [] })
  })

  it('is rewritten within HEAD_EVERY_MS of an append, while the log stays open', async () => {
    const log = await AuditLog.open({ file, fsync: false })
    try {
      const record = await log.append({ type: 'gateway.start' })
      const appended = Date.now()
      expect(existsSync(`${file}.head.json`)).toBe(false)
      // Wait for the file itself (the writer's timer is real), bounded well above the promise.
      while (!existsSync(`${file}.head.json`) && Date.now() - appended < 10 * HEAD_EVERY_MS) {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      expect(head()).toMatchObject({ seq: record.seq, hash: record.hash })
    } finally {
      await log.close()
    }
  })

  it('a deleted tail is TAMPERED for plain verify, and the writer will not continue the chain', async () => {
    await writeLog(file, 6)
    const lines = readLines(file)
    writeLines(file, lines.slice(0, -2))
    expect(await verifyAuditChain([file])).toMatchObject({
      ok: false,
      error: {
        file,
        reason: expect.stringMatching(
          /^truncated: the chain ends at seq 4, but its head \(written .+\) names seq 6$/,
        ),
      },
    })
    await expect(AuditLog.open({ file })).rejects.toMatchObject({
      code: 'AUDIT_INVALID',
      message: `audit file ${file}: it ends at seq 4, but its head names seq 6: its tail was deleted; move it and audit.jsonl.head.json aside to start a new chain, and investigate`,
    })
  })

  it('signed with the audit key: verifies with the public key; an unsigned or resealed head is caught', async () => {
    const { privateJwk, publicJwk } = await es256Keys()
    await writeLog(file, 4, { signingKey: privateJwk })
    expect(typeof head().sig).toBe('string')
    expect(await verifyAuditChain([file], { publicKey: publicJwk })).toMatchObject({ ok: true })

    // Cut the tail and lower the head to match, without the key: unsigned …
    writeLines(file, readLines(file).slice(0, -1))
    const cut = JSON.parse(readLines(file).at(-1)!) as { seq: number; hash: string }
    const { sig, ...unsigned } = { ...head(), seq: cut.seq, hash: cut.hash }
    writeFileSync(`${file}.head.json`, JSON.stringify(unsigned))
    expect(await verifyAuditChain([file], { publicKey: publicJwk })).toMatchObject({
      ok: false,
      error: { reason: 'the head is not signed, but a public key was given' },
    })
    // … or with the old signature kept.
    writeFileSync(`${file}.head.json`, JSON.stringify({ ...unsigned, sig }))
    expect(await verifyAuditChain([file], { publicKey: publicJwk })).toMatchObject({
      ok: false,
      error: { reason: 'the head signature covers another head' },
    })
  })

  it('a chain without a head verifies, with a warning that names what is not covered', async () => {
    await writeLog(file, 2)
    writeFileSync(`${file}.head.json`, '')
    expect(await verifyAuditChain([file])).toMatchObject({
      ok: false,
      error: { reason: 'the head file is not JSON' },
    })
    rmSync(`${file}.head.json`)
    const report = await verifyAuditChain([file])
    expect(report.ok).toBe(true)
    expect(report.warnings).toEqual([
      'audit.jsonl: no head file (audit.jsonl.head.json): a deleted tail is detected only with --expect',
    ])
  })
})
