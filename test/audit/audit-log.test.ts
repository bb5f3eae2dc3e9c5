/**
 * AuditLog: write-ahead appends, ordering, the door (no content fields, caps, single-line
 * encoding), resume, crash recovery, rotation and signed checkpoints.
 */
import { createHash } from 'node:crypto'
import {
  appendFileSync,
  existsSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { open } from 'node:fs/promises'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  AuditLog,
  DEFAULT_MAX_FIELD_CHARS,
  GENESIS_HASH,
  hashArgs,
  listAuditFiles,
  verifyAuditChain,
  verifyAuditFile,
  type AuditEvent,
} from '../../src/audit/index.js'
import { isSluiceError } from '../../src/errors.js'
import {
  es256Keys,
  readLines,
  rehashChain,
  steppingClock,
  tempDir,
  writeLines,
  writeLog,
} from './helpers.js'

let dir: string
let cleanup: () => void
let file: string

beforeEach(() => {
  ;({ dir, cleanup } = tempDir())
  file = join(dir, 'audit.jsonl')
})
afterEach(() => cleanup())

const decision = (i: number): AuditEvent => ({
  type: 'call.decision',
  executionId: `exec-${i}`,
  tool: 'crm.find',
  decision: 'allow',
})

/** FileHandle's prototype (node:fs/promises does not export the class), to watch its syncs. */
async function fileHandlePrototype(): Promise<{ datasync(): Promise<void> }> {
  const handle = await open(file, 'a')
  await handle.close()
  return Object.getPrototypeOf(handle) as { datasync(): Promise<void> }
}

/**
 * Holds the first fdatasync from now on open until `release()`; `entered` resolves once it
 * started. `synced` gets the line count of the file as each sync completes. Restore `spy` after.
 */
async function holdFirstSync() {
  const proto = await fileHandlePrototype()
  const original = proto.datasync
  const synced: number[] = []
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  let started: () => void = () => undefined
  const entered = new Promise<void>((resolve) => {
    started = resolve
  })
  const spy = vi.spyOn(proto, 'datasync').mockImplementation(async function (this: unknown) {
    if (synced.length === 0) {
      started()
      await gate
    }
    await original.call(this)
    synced.push(readLines(file).length)
  })
  return { entered, release, synced, spy }
}

describe('AuditLog.append', () => {
  it('writes one chained JSON line per record and resolves only once the line is in the file', async () => {
    const log = await AuditLog.open({ file, fsync: true, now: steppingClock() })
    try {
      const first = await log.append({
        type: 'execution.start',
        executionId: 'e1',
        principal: { sub: 'alice', iss: 'https://idp.example.com', tenant: 't1' },
        codeHash: hashArgs('return 1'),
      })
      expect(readLines(file)).toHaveLength(1)
      const second = await log.append({
        ...decision(1),
        ruleId: 'read-only',
        argsHash: hashArgs({ q: 'x' }),
        toolHash: hashArgs({ name: 'find' }),
      })
      const lines = readLines(file)
      expect(lines).toHaveLength(2)
      expect(JSON.parse(lines[1]!)).toEqual(second)
      expect(first).toMatchObject({
        seq: 1,
        time: '2026-01-01T00:00:01.000Z',
        type: 'execution.start',
        prev: GENESIS_HASH,
      })
      expect(second).toMatchObject({ seq: 2, prev: first.hash })
      expect(Object.keys(second)).toEqual([
        'seq',
        'time',
        'type',
        'executionId',
        'tool',
        'toolHash',
        'decision',
        'ruleId',
        'argsHash',
        'prev',
        'hash',
      ])
      expect(Object.isFrozen(second)).toBe(true)
      expect(log).toMatchObject({ lastSeq: 2, headHash: second.hash })
    } finally {
      await log.close()
    }
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 2 })
  })

  it('commits concurrent appends as a group: one write and one fdatasync, then all resolve', async () => {
    const log = await AuditLog.open({ file, fsync: true })
    // Each sync records how many lines the file held when it completed; the first one is held
    // open until the test has appended more, to show that arrivals meanwhile form the next group.
    const { entered: inFirstSync, release, synced, spy } = await holdFirstSync()
    try {
      const check = (p: Promise<{ seq: number }>) =>
        p.then((r) => {
          // Resolved only once a sync covered its line.
          expect(synced.at(-1)).toBeGreaterThanOrEqual(r.seq)
          return r.seq
        })
      const firstGroup = Array.from({ length: 32 }, (_, i) => check(log.append(decision(i))))
      await inFirstSync
      const secondGroup = Array.from({ length: 32 }, (_, i) => check(log.append(decision(32 + i))))
      release()
      const seqs = await Promise.all([...firstGroup, ...secondGroup])
      expect(synced).toEqual([32, 64])
      expect(seqs).toEqual(Array.from({ length: 64 }, (_, i) => i + 1))
    } finally {
      spy.mockRestore()
      await log.close()
    }
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 64 })
  })

  it('fails every append of a group whose sync fails, and every later one', async () => {
    const log = await AuditLog.open({ file, fsync: true })
    await log.append(decision(0))
    const proto = await fileHandlePrototype()
    const spy = vi.spyOn(proto, 'datasync').mockRejectedValueOnce(new Error('EIO: disk gone'))
    try {
      const group = await Promise.allSettled([log.append(decision(1)), log.append(decision(2))])
      const message = `cannot write the audit log ${file}; refusing further records`
      expect(group).toEqual([
        {
          status: 'rejected',
          reason: expect.objectContaining({ code: 'AUDIT_UNAVAILABLE', message }),
        },
        {
          status: 'rejected',
          reason: expect.objectContaining({ code: 'AUDIT_UNAVAILABLE', message }),
        },
      ])
      await expect(log.append(decision(3))).rejects.toMatchObject({
        code: 'AUDIT_UNAVAILABLE',
        message,
      })
    } finally {
      spy.mockRestore()
      await log.close()
    }
  })

  it('resolves a non-durable append once written, with no sync; the next durable one syncs both', async () => {
    const log = await AuditLog.open({ file, fsync: true })
    const proto = await fileHandlePrototype()
    const synced: number[] = []
    const original = proto.datasync
    const spy = vi.spyOn(proto, 'datasync').mockImplementation(async function (this: unknown) {
      await original.call(this)
      synced.push(readLines(file).length)
    })
    try {
      const start = await log.append(
        { type: 'execution.start', executionId: 'e1' },
        { durable: false },
      )
      expect(start.seq).toBe(1)
      expect(readLines(file)).toHaveLength(1)
      expect(synced).toEqual([])
      await log.append(decision(1))
      expect(synced).toEqual([2])
    } finally {
      spy.mockRestore()
      await log.close()
    }
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 2 })
  })

  it('resolves the non-durable appends of a group before its sync ends, the durable ones after', async () => {
    const log = await AuditLog.open({ file, fsync: true })
    const { entered: inSync, release, spy } = await holdFirstSync()
    try {
      let durableDone = false
      const durable = log.append(decision(1)).then((r) => {
        durableDone = true
        return r
      })
      const written = log.append(decision(2), { durable: false })
      await inSync
      expect((await written).seq).toBe(2)
      expect(durableDone).toBe(false)
      release()
      expect((await durable).seq).toBe(1)
      expect(spy).toHaveBeenCalledTimes(1)
    } finally {
      spy.mockRestore()
      await log.close()
    }
  })

  it('fails the durable appends after a non-durable one when the sync covering both fails', async () => {
    const log = await AuditLog.open({ file, fsync: true })
    const proto = await fileHandlePrototype()
    const spy = vi.spyOn(proto, 'datasync').mockRejectedValueOnce(new Error('EIO: disk gone'))
    try {
      expect((await log.append(decision(1), { durable: false })).seq).toBe(1)
      const message = `cannot write the audit log ${file}; refusing further records`
      await expect(log.append(decision(2))).rejects.toMatchObject({
        code: 'AUDIT_UNAVAILABLE',
        message,
      })
      await expect(log.append(decision(3), { durable: false })).rejects.toMatchObject({
        code: 'AUDIT_UNAVAILABLE',
        message,
      })
    } finally {
      spy.mockRestore()
      await log.close()
    }
  })

  it('gives concurrent callers consecutive seqs in call order', async () => {
    const log = await AuditLog.open({ file, fsync: false })
    try {
      const records = await Promise.all(
        Array.from({ length: 50 }, (_, i) => log.append(decision(i))),
      )
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
      expect(records.map((r) => r.executionId)).toEqual(
        Array.from({ length: 50 }, (_, i) => `exec-${i}`),
      )
    } finally {
      await log.close()
    }
    expect(readLines(file).map((l) => JSON.parse(l).executionId)).toEqual(
      Array.from({ length: 50 }, (_, i) => `exec-${i}`),
    )
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 50 })
  })

  it('refuses content fields, reserved types and malformed digests, writing nothing', async () => {
    const log = await AuditLog.open({ file, fsync: false })
    try {
      const cases: Array<[unknown, string]> = [
        [
          { ...decision(1), args: { password: 'hunter2' } },
          'audit event has an unknown field "args" (content never goes into the audit log; hash it)',
        ],
        [{ type: 'checkpoint' }, 'audit event type "checkpoint" is not one a caller may append'],
        [
          { ...decision(1), argsHash: 'hunter2' },
          'audit event field "argsHash" must be "sha256:<64 hex>" (use hashArgs)',
        ],
        [
          { ...decision(1), principal: { sub: 'a', iss: 'b', token: 'ey…' } },
          'audit principal has an unknown field "token" (only sub, iss, tenant, act)',
        ],
        [
          { ...decision(1), traceId: 'xyz' },
          'audit event field "traceId" must be 32 lower-case hex digits',
        ],
        [{ ...decision(1), ms: -1 }, 'audit event field "ms" must be a finite number ≥ 0'],
      ]
      for (const [event, message] of cases) {
        await expect(log.append(event as AuditEvent)).rejects.toThrow(new TypeError(message))
      }
      await log.append(decision(1))
    } finally {
      await log.close()
    }
    expect(readLines(file).map((l) => JSON.parse(l).seq)).toEqual([1])
  })

  it('AUD-02 keeps CR, LF and U+2028 inside one JSON line; ANSI, C1 and bidi characters are removed (DESIGN §3b)', async () => {
    const nasty = 'evil\r\n{"seq":99}\u001b[31mred\u009b2J\u2028\u2029"quote"\\'
    const log = await AuditLog.open({ file, fsync: false })
    try {
      await log.append({ ...decision(1), tool: nasty, principal: { sub: nasty, iss: 'x' } })
      await log.append(decision(2))
    } finally {
      await log.close()
    }
    const raw = readFileSync(file, 'utf8')
    expect(raw.split('\n')).toHaveLength(3)
    expect(raw).not.toMatch(/[\r\u001b\u009b\u2028\u2029]/)
    const kept = 'evil\r\n{"seq":99}[31mred2J\u2028\u2029"quote"\\'
    expect(JSON.parse(readLines(file)[0]!)).toMatchObject({
      tool: kept,
      principal: { sub: kept },
    })
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 2 })
  })

  it('AUD-02 caps a free string at maxFieldChars: N kept whole, N+1 cut with a marker', async () => {
    const log = await AuditLog.open({ file, fsync: false, maxFieldChars: 32 })
    try {
      const atCap = await log.append({ ...decision(1), ruleId: 'r'.repeat(32) })
      const overCap = await log.append({ ...decision(2), ruleId: 'r'.repeat(33) })
      const huge = await log.append({ ...decision(3), reason: 'x'.repeat(1_000_000) })
      expect(atCap.ruleId).toBe('r'.repeat(32))
      expect(overCap.ruleId).toBe(`${'r'.repeat(32)}…[+1 chars]`)
      expect(huge.reason).toBe(`${'x'.repeat(32)}…[+999968 chars]`)
    } finally {
      await log.close()
    }
    expect(statSync(file).size).toBeLessThan(2000)
    expect(DEFAULT_MAX_FIELD_CHARS).toBe(512)
  })

  it('AUD-05 rejects appends after close with AUDIT_UNAVAILABLE', async () => {
    const log = await AuditLog.open({ file, fsync: false })
    await log.close()
    const error = await log.append(decision(1)).catch((e: unknown) => e)
    expect(isSluiceError(error, 'AUDIT_UNAVAILABLE')).toBe(true)
    expect((error as Error).message).toBe('the audit log is closed')
  })

  it('refuses a second open of the same file in one process', async () => {
    const log = await AuditLog.open({ file, fsync: false })
    try {
      await expect(AuditLog.open({ file, fsync: false })).rejects.toThrow(
        `audit file ${file} is already open in this process`,
      )
    } finally {
      await log.close()
    }
  })
})

describe('AuditLog.open', () => {
  it('resumes the chain of an existing file', async () => {
    await writeLog(file, 3)
    const log = await AuditLog.open({ file, fsync: false })
    try {
      const next = await log.append(decision(9))
      expect(next.seq).toBe(4)
      expect(next.prev).toBe(JSON.parse(readLines(file)[2]!).hash)
    } finally {
      await log.close()
    }
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 4 })
  })

  it('refuses a file that does not verify, naming the line and reason', async () => {
    await writeLog(file, 3)
    const lines = readLines(file)
    lines[1] = lines[1]!.replace('exec-1', 'exec-X')
    writeLines(file, lines)
    const error = await AuditLog.open({ file }).catch((e: unknown) => e)
    expect(isSluiceError(error, 'AUDIT_INVALID')).toBe(true)
    expect((error as Error).message).toBe(
      `audit file ${file} does not verify (line 2: record hash does not match its content (the record was edited)); move it aside to start a new chain`,
    )
  })

  it('accounts for a torn tail with a recovery record and chains from the last complete record', async () => {
    await writeLog(file, 3)
    const head = JSON.parse(readLines(file)[2]!).hash as string
    const tornText = '{"seq":4,"time":"2026-01-01T00:0'
    appendFileSync(file, tornText)
    const log = await AuditLog.open({ file, fsync: false })
    try {
      const sha256 = `sha256:${createHash('sha256').update(`${tornText}\n`).digest('hex')}`
      expect(log.recovery).toEqual({ line: 4, bytes: tornText.length + 1, sha256 })
      expect(log.openWarnings).toEqual([
        `verifies up to record 3; trailing partial line at line 4 (${tornText.length} bytes, likely a crash mid-write)`,
      ])
      await log.append(decision(4))
    } finally {
      await log.close()
    }
    const lines = readLines(file)
    expect(lines[3]).toBe(tornText)
    const recovery = JSON.parse(lines[4]!)
    expect(recovery).toMatchObject({
      seq: 4,
      type: 'recovery',
      prev: head,
      torn: { line: 4, bytes: tornText.length + 1 },
    })
    expect(JSON.parse(lines[5]!)).toMatchObject({ seq: 5, prev: recovery.hash })
    expect(await verifyAuditFile(file)).toMatchObject({
      ok: true,
      records: 5,
      recoveries: 1,
      warnings: [],
    })
  })

  it('detects torn bytes that do not match the recovery record naming them', async () => {
    await writeLog(file, 2)
    appendFileSync(file, '{"seq":3,"ti')
    await (await AuditLog.open({ file, fsync: false })).close()
    const lines = readLines(file)
    lines[2] = '{"seq":3,"tX'
    writeLines(file, lines)
    expect((await verifyAuditFile(file)).error).toEqual({
      line: 3,
      seq: 3,
      reason: 'torn bytes at line 3 do not match the recovery record at line 4',
    })
  })

  it('completes a whole last record whose newline was lost', async () => {
    await writeLog(file, 2)
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, -1))
    expect((await verifyAuditFile(file)).warnings).toEqual([
      'the last record (seq 2) lacks its newline',
    ])
    await writeLog(file, 1, { now: steppingClock(Date.parse('2026-02-01T00:00:00.000Z')) })
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, records: 3, warnings: [] })
  })
})

describe('AuditLog clock', () => {
  it('AUD-07 orders by seq, and verify warns when time goes backwards', async () => {
    await writeLog(file, 2, { now: steppingClock(Date.parse('2026-03-01T00:00:00.000Z')) })
    await writeLog(file, 1, { now: steppingClock(Date.parse('2026-01-01T00:00:00.000Z')) })
    expect(await verifyAuditFile(file)).toMatchObject({
      ok: true,
      lastSeq: 3,
      warnings: [
        'time goes backwards at seq 3 (2026-01-01T00:00:01.000Z < 2026-03-01T00:00:02.000Z)',
      ],
    })
  })
})

describe('AuditLog rotation', () => {
  async function sizeOfTwo(): Promise<number> {
    const probe = join(dir, 'probe', 'audit.jsonl')
    await writeLog(probe, 2)
    return statSync(probe).size
  }

  it('keeps a file of exactly rotateBytes and rotates at rotateBytes + 1 byte', async () => {
    const size = await sizeOfTwo()
    const exact = join(dir, 'exact', 'audit.jsonl')
    await writeLog(exact, 2, { rotateBytes: size })
    expect(await listAuditFiles(exact)).toEqual([exact])
    const over = join(dir, 'over', 'audit.jsonl')
    await writeLog(over, 2, { rotateBytes: size - 1 })
    expect(await listAuditFiles(over)).toEqual([`${over}.1`, over])
  })

  it("chains each new file to the previous file's last hash, with seqs running on", async () => {
    await writeLog(file, 10, { rotateBytes: 600 })
    const files = await listAuditFiles(file)
    expect(files.length).toBeGreaterThan(2)
    expect(files.slice(0, -1)).toEqual(files.slice(0, -1).map((_, i) => `${file}.${i + 1}`))
    const secondFirst = JSON.parse(readLines(files[1]!)[0]!)
    const firstLast = JSON.parse(readLines(files[0]!).at(-1)!)
    expect(secondFirst).toMatchObject({
      type: 'rotation',
      from: 'audit.jsonl.1',
      seq: firstLast.seq + 1,
      prev: firstLast.hash,
    })
    const chain = await verifyAuditChain(files)
    expect(chain).toMatchObject({
      ok: true,
      files: files.length,
      startsFrom: GENESIS_HASH,
      warnings: [],
    })
    expect(chain.records - (files.length - 1)).toBe(10)
    const alone = await verifyAuditFile(files[1]!)
    expect(alone.ok).toBe(true)
    expect(alone.warnings[0]).toMatch(
      /^chain continues from an earlier file \(seq \d+, audit\.jsonl\.1\); verify the whole chain with verifyAuditChain$/,
    )
  })

  it('detects a rotated file removed from the middle of the chain', async () => {
    await writeLog(file, 10, { rotateBytes: 600 })
    const files = await listAuditFiles(file)
    const report = await verifyAuditChain([files[0]!, ...files.slice(2)])
    expect(report.ok).toBe(false)
    expect(report.error).toMatchObject({ file: files[2], line: 1 })
    expect(report.error?.reason).toMatch(/^records missing: expected seq \d+, found \d+$/)
  })

  it('resumes after a crash between the rename and the new file', async () => {
    await writeLog(file, 3)
    renameSync(file, `${file}.1`)
    await writeLog(file, 1)
    expect(JSON.parse(readLines(file)[0]!)).toMatchObject({
      type: 'rotation',
      from: 'audit.jsonl.1',
      seq: 4,
    })
    expect(await verifyAuditChain(await listAuditFiles(file))).toMatchObject({
      ok: true,
      lastSeq: 5,
    })
  })
})

describe('AuditLog checkpoints', () => {
  it('writes a signed checkpoint after every N records, and one on close', async () => {
    const { privateJwk, publicJwk } = await es256Keys()
    await writeLog(file, 7, { checkpointEvery: 3, signingKey: privateJwk })
    const types = readLines(file).map((l) => JSON.parse(l).type as string)
    expect(types).toEqual([
      ...['call.decision', 'call.decision', 'call.decision', 'checkpoint'],
      ...['call.decision', 'call.decision', 'call.decision', 'checkpoint'],
      ...['call.decision', 'checkpoint'],
    ])
    const report = await verifyAuditFile(file, { publicKey: publicJwk, checkpointEvery: 3 })
    expect(report).toMatchObject({
      ok: true,
      checkpoints: 3,
      signaturesChecked: true,
      lastCheckpoint: { seq: 10 },
    })
  })

  it('reads the signing key from a JWK file', async () => {
    const { privateJwk, publicJwk } = await es256Keys()
    const keyFile = join(dir, 'audit-key.jwk')
    writeFileSync(keyFile, JSON.stringify(privateJwk))
    await writeLog(file, 2, { checkpointEvery: 2, signingKeyFile: keyFile })
    expect(await verifyAuditFile(file, { publicKey: publicJwk })).toMatchObject({
      ok: true,
      checkpoints: 1,
    })
  })

  it('AUD-08 detects records removed before a checkpoint and the chain rewritten, but only with the key', async () => {
    const { privateJwk, publicJwk } = await es256Keys()
    await writeLog(file, 8, { checkpointEvery: 4, signingKey: privateJwk })
    const lines = readLines(file)
    lines.splice(1, 2)
    writeLines(file, rehashChain(lines))
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true })
    const report = await verifyAuditFile(file, { publicKey: publicJwk })
    expect(report.ok).toBe(false)
    expect(report.error).toEqual({
      line: 3,
      seq: 3,
      reason: 'checkpoint signature covers seq 4, not the chain before it (seq 2)',
    })
  })

  it('AUD-08 detects stripped checkpoints when told the interval', async () => {
    const { privateJwk } = await es256Keys()
    await writeLog(file, 6, { checkpointEvery: 2, signingKey: privateJwk })
    writeLines(
      file,
      rehashChain(readLines(file).filter((l) => JSON.parse(l).type !== 'checkpoint')),
    )
    expect((await verifyAuditFile(file, { checkpointEvery: 2 })).error).toEqual({
      line: 3,
      seq: 3,
      reason: 'checkpoint missing: more than 2 records since the last one',
    })
  })

  it('rejects a checkpoint signed by another key', async () => {
    const { privateJwk } = await es256Keys()
    const other = await es256Keys('other')
    await writeLog(file, 2, { checkpointEvery: 2, signingKey: privateJwk })
    expect((await verifyAuditFile(file, { publicKey: other.publicJwk })).error).toEqual({
      line: 3,
      seq: 3,
      reason: 'checkpoint signature does not verify with the given public key',
    })
  })

  it('AUD-03 detects a truncated tail against an externally anchored checkpoint', async () => {
    const { privateJwk, publicJwk } = await es256Keys()
    await writeLog(file, 6, { checkpointEvery: 3, signingKey: privateJwk })
    const anchored = (await verifyAuditFile(file, { publicKey: publicJwk })).lastCheckpoint!
    writeLines(file, readLines(file).slice(0, 5))
    expect(await verifyAuditFile(file, { publicKey: publicJwk })).toMatchObject({ ok: true })
    expect(
      (await verifyAuditFile(file, { publicKey: publicJwk, expectRecord: anchored })).error,
    ).toEqual({
      line: 5,
      reason: `truncated: expected record seq ${anchored.seq} is missing (file ends at seq 5)`,
    })
  })

  it('keeps the interval across restarts and rotations', async () => {
    const { privateJwk, publicJwk } = await es256Keys()
    for (let run = 0; run < 4; run++)
      await writeLog(file, 3, { checkpointEvery: 5, signingKey: privateJwk, rotateBytes: 1500 })
    const files = await listAuditFiles(file)
    expect(files.length).toBeGreaterThan(1)
    expect(
      await verifyAuditChain(files, { publicKey: publicJwk, checkpointEvery: 5 }),
    ).toMatchObject({ ok: true })
  })

  it('needs a key when checkpoints are on, and a private one', async () => {
    await expect(AuditLog.open({ file, checkpointEvery: 2 })).rejects.toThrow(
      new TypeError('audit checkpointEvery needs signingKey or signingKeyFile'),
    )
    const { publicJwk } = await es256Keys()
    const error = await AuditLog.open({ file, checkpointEvery: 2, signingKey: publicJwk }).catch(
      (e: unknown) => e,
    )
    expect(isSluiceError(error, 'CONFIG_INVALID')).toBe(true)
    expect((error as Error).message).toBe(
      'audit signing key (signingKey) is not a private ES256 JWK or PKCS#8 PEM',
    )
    expect(existsSync(file)).toBe(false)
  })
})

describe('hashArgs', () => {
  it('hashes canonical JSON: key order does not matter, values do', () => {
    expect(hashArgs({ b: 1, a: { d: [1, 'x'], c: null } })).toBe(
      hashArgs({ a: { c: null, d: [1, 'x'] }, b: 1 }),
    )
    expect(hashArgs({ a: 1 })).not.toBe(hashArgs({ a: 2 }))
    expect(hashArgs('return 1')).toMatch(/^sha256:[0-9a-f]{64}$/)
  })

  it('refuses values JSON cannot hold', () => {
    expect(() => hashArgs({ n: Number.NaN })).toThrow(
      new TypeError('canonicalJson: NaN is not a JSON number'),
    )
    expect(() => hashArgs({ f: () => 1 })).toThrow(
      new TypeError('canonicalJson: a function is not JSON'),
    )
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => hashArgs(cyclic)).toThrow(/nesting deeper than 512/)
  })
})
