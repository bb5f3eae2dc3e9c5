/**
 * AUD-03: every kind of edit to a stored log is detected and located by line and seq.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { GENESIS_HASH, hashRecord, verifyAuditFile } from '../../src/audit/index.js'
import { readLines, rehashChain, tempDir, writeLines, writeLog } from './helpers.js'

let dir: string
let cleanup: () => void
let file: string

beforeEach(async () => {
  ;({ dir, cleanup } = tempDir())
  file = await writeLog(join(dir, 'audit.jsonl'), 6)
})
afterEach(() => cleanup())

describe('verifyAuditFile', () => {
  it('accepts an untouched log and reports its head', async () => {
    const report = await verifyAuditFile(file)
    const lines = readLines(file)
    expect(report).toMatchObject({
      ok: true,
      records: 6,
      firstSeq: 1,
      lastSeq: 6,
      startsFrom: GENESIS_HASH,
      warnings: [],
    })
    expect(report.headHash).toBe(JSON.parse(lines[5]!).hash)
    expect(JSON.parse(lines[0]!).prev).toBe(GENESIS_HASH)
  })

  it('AUD-03 detects a modified field and names the line and seq', async () => {
    const lines = readLines(file)
    lines[2] = lines[2]!.replace('"decision":"allow"', '"decision":"deny"')
    writeLines(file, lines)
    const report = await verifyAuditFile(file)
    expect(report.ok).toBe(false)
    expect(report.error).toEqual({
      line: 3,
      seq: 3,
      reason: 'record hash does not match its content (the record was edited)',
    })
    expect(report.lastSeq).toBe(2)
  })

  it('AUD-03 detects a deleted line', async () => {
    const lines = readLines(file)
    lines.splice(3, 1)
    writeLines(file, lines)
    const report = await verifyAuditFile(file)
    expect(report.error).toEqual({
      line: 4,
      seq: 5,
      reason: 'records missing: expected seq 4, found 5',
    })
  })

  it('AUD-03 detects two swapped lines', async () => {
    const lines = readLines(file)
    ;[lines[1], lines[2]] = [lines[2]!, lines[1]!]
    writeLines(file, lines)
    const report = await verifyAuditFile(file)
    expect(report.error).toEqual({
      line: 2,
      seq: 3,
      reason: 'records missing: expected seq 2, found 3',
    })
  })

  it('AUD-03 detects a duplicated line', async () => {
    const lines = readLines(file)
    lines.splice(2, 0, lines[1]!)
    writeLines(file, lines)
    const report = await verifyAuditFile(file)
    expect(report.error).toEqual({
      line: 3,
      seq: 2,
      reason: 'duplicated or reordered record: expected seq 3, found 2',
    })
  })

  it('AUD-03 detects bytes cut out of the middle of the file', async () => {
    const text = readFileSync(file, 'utf8')
    const start = text.indexOf('\n') + 40
    writeFileSync(file, text.slice(0, start) + text.slice(start + 300))
    const report = await verifyAuditFile(file)
    expect(report.ok).toBe(false)
    expect(report.error?.line).toBe(2)
    // The spliced line may or may not still parse as JSON; either way line 2 is named.
    expect(report.error?.reason).toMatch(
      /^(unparseable bytes \(\d+\) in the middle of the file|record hash does not match its content)/,
    )
  })

  it('AUD-03 detects a record edited with its own hash recomputed: the next link breaks', async () => {
    const lines = readLines(file)
    const record = JSON.parse(lines[2]!) as Record<string, unknown>
    record.decision = 'deny'
    record.hash = hashRecord(record)
    lines[2] = JSON.stringify(record)
    writeLines(file, lines)
    const report = await verifyAuditFile(file)
    expect(report.error).toEqual({
      line: 4,
      seq: 4,
      reason: 'chain broken: prev does not match the hash of record 3',
    })
  })

  it('AUD-03 detects deleted leading records', async () => {
    writeLines(file, readLines(file).slice(2))
    const report = await verifyAuditFile(file)
    expect(report.error).toEqual({
      line: 1,
      seq: 3,
      reason:
        'first record neither starts the chain nor continues a rotated file (records before it are missing)',
    })
  })

  it('AUD-03 detects a whitespace-only edit (records keep one canonical encoding)', async () => {
    const lines = readLines(file)
    lines[1] = lines[1]!.replace('"seq":2,', '"seq": 2,')
    writeLines(file, lines)
    expect((await verifyAuditFile(file)).error).toEqual({
      line: 2,
      seq: 2,
      reason: 'record is not in its canonical single-line encoding (it was edited)',
    })
  })

  it('AUD-03 cannot see a consistent rewrite without a key (stated limit; checkpoints cover it)', async () => {
    const lines = readLines(file)
    lines.splice(2, 2)
    writeLines(file, rehashChain(lines))
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 4 })
  })

  it('AUD-03 treats a torn last line as a crash: ok, with a warning naming the line', async () => {
    appendFileSync(file, '{"seq":7,"time":"2026-01-0')
    const report = await verifyAuditFile(file)
    expect(report.ok).toBe(true)
    expect(report.lastSeq).toBe(6)
    expect(report.warnings).toEqual([
      'verifies up to record 6; trailing partial line at line 7 (26 bytes, likely a crash mid-write)',
    ])
  })

  it('a JSON line that is not a record fails', async () => {
    appendFileSync(file, '[1,2]\n')
    expect((await verifyAuditFile(file)).error).toEqual({
      line: 7,
      reason: 'not an audit record (seq, type, prev or hash missing or malformed)',
    })
  })

  it('AUD-01 guest-shaped "records" appended by hand do not verify', async () => {
    const fake = {
      seq: 7,
      time: '2026-01-01T00:00:07.000Z',
      type: 'call.decision',
      decision: 'allow',
      prev: GENESIS_HASH,
      hash: GENESIS_HASH,
    }
    appendFileSync(file, `${JSON.stringify(fake)}\n`)
    expect((await verifyAuditFile(file)).error?.reason).toBe(
      'record hash does not match its content (the record was edited)',
    )
  })
})
