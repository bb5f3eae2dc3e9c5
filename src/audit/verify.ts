/**
 * Verification of audit files: one streaming pass that checks every record's encoding, hash,
 * sequence and link to the record before, accounts for torn bytes left by a crash, and checks
 * checkpoint signatures when given the public key. `AuditLog.open` uses the same pass to find
 * where to resume, so writer and verifier cannot disagree about what a valid file is.
 *
 * What it can and cannot see: any edit, deletion, reordering or duplication of a record, and a
 * cut out of the middle, break the chain. Removing the *tail* of the newest file leaves a valid
 * shorter chain; only a signed checkpoint anchored elsewhere (`expectRecord`) reveals that.
 * Someone who rewrites and re-hashes the whole file is caught only by checkpoint signatures.
 * Unparseable bytes after the last valid record are reported as a torn tail (a crash mid-write),
 * which is `ok` with a warning: a crash can leave them, and they prove nothing either way.
 *
 * @module
 */
import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { compactVerify, type KeyInput } from 'jose'
import { canonicalJson, encodeJsonLine, SHA256_TAGGED } from './canonical-json.js'
import { GENESIS_HASH, hashRecord, legacyHashRecord } from './record.js'

export interface VerifyOptions {
  /** Public key (JWK, KeyObject or CryptoKey) that signs checkpoints; without it signatures are not checked. */
  publicKey?: KeyInput
  /**
   * Require a checkpoint after at most this many records (recovery records excepted), as the
   * writer's `checkpointEvery` promises. Catches checkpoints stripped from a rewritten file.
   */
  checkpointEvery?: number
  /**
   * A record known from elsewhere (e.g. the last checkpoint copied to WORM storage): the file
   * must contain it. Catches a truncated tail.
   */
  expectRecord?: { seq: number; hash: string }
}

export interface VerifyError {
  /** The file, in chain verification. */
  file?: string
  /** 1-based line of the first bad record (or of the bytes that cannot be accounted for). */
  line: number
  seq?: number
  reason: string
}

export interface VerifyReport {
  /** True when every record verifies; a torn tail only adds a warning. */
  ok: boolean
  /** Valid records read (every type). */
  records: number
  firstSeq?: number
  /** Seq of the last valid record; 0 when there is none. */
  lastSeq: number
  /** Hash of the last valid record: what the next record must name as `prev`. */
  headHash: string
  /** `prev` of the first record: `GENESIS_HASH`, or the hash of the previous file's last record. */
  startsFrom: string
  checkpoints: number
  /** True when checkpoint signatures were checked (a public key was given). */
  signaturesChecked: boolean
  lastCheckpoint?: { seq: number; hash: string }
  recoveries: number
  /** Everything worth a look that is not an error (torn tail, time going backwards, …). */
  warnings: string[]
  /** `warnings` as one line, present when there is any (e.g. "verifies up to record N; trailing partial line at line L …"). */
  warning?: string
  error?: VerifyError
}

/** What `AuditLog.open` needs besides the report. */
export interface ScanResult extends VerifyReport {
  /** Unparseable bytes after the last valid record (a crash mid-write), not yet recovered. */
  tornTail?: { line: number; bytes: number; terminated: boolean; hash: Hash }
  /** Records since the last checkpoint, recovery records excepted; `undefined` when no checkpoint. */
  sinceCheckpoint: number
  sawCheckpoint: boolean
  /** Type of the first valid record (`rotation`/`recovery` when the file continues another). */
  firstType?: string
  /** True when `expectRecord` was found (and matched). */
  expectSeen: boolean
  /** The last record is complete but its newline is missing (the writer adds it). */
  missingNewline: boolean
}

interface ScanOptions extends VerifyOptions {
  /** Records the chain must contain (an `expectRecord`, the signed head); checked per record. */
  anchors?: readonly { seq: number; hash: string }[]
  /** The record this file must continue (previous file's last), in chain verification. */
  continues?: { seq: number; hash: string }
  /** Records since the last checkpoint carried over from earlier files. */
  sinceCheckpoint?: number
  /** Whether a missing `expectRecord` fails this file (false in chain verification). */
  expectInThisFile?: boolean
}

const MAX_WARNINGS = 20

interface RawLine {
  bytes: Buffer
  line: number
  terminated: boolean
}

async function* readLines(path: string): AsyncGenerator<RawLine> {
  const stream = createReadStream(path, { highWaterMark: 64 * 1024 })
  let carry: Buffer[] = []
  let line = 0
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let start = 0
      for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
        carry.push(chunk.subarray(start, nl))
        yield { bytes: Buffer.concat(carry), line: ++line, terminated: true }
        carry = []
        start = nl + 1
      }
      if (start < chunk.length) carry.push(chunk.subarray(start))
    }
    if (carry.length > 0) yield { bytes: Buffer.concat(carry), line: ++line, terminated: false }
  } finally {
    stream.destroy()
  }
}

function isRecordShape(value: unknown): value is Record<string, unknown> & {
  seq: number
  time: unknown
  type: string
  prev: string
  hash: string
} {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const r = value as Record<string, unknown>
  return (
    typeof r.seq === 'number' &&
    Number.isSafeInteger(r.seq) &&
    r.seq > 0 &&
    typeof r.type === 'string' &&
    r.type.length > 0 &&
    typeof r.prev === 'string' &&
    SHA256_TAGGED.test(r.prev) &&
    typeof r.hash === 'string' &&
    SHA256_TAGGED.test(r.hash)
  )
}

/** The scan behind `verifyAuditFile` and `AuditLog.open`. Never throws for file content. */
export async function scanAuditFile(path: string, options: ScanOptions = {}): Promise<ScanResult> {
  const report: ScanResult = {
    ok: true,
    records: 0,
    lastSeq: options.continues?.seq ?? 0,
    headHash: options.continues?.hash ?? GENESIS_HASH,
    startsFrom: options.continues?.hash ?? GENESIS_HASH,
    checkpoints: 0,
    signaturesChecked: options.publicKey !== undefined,
    recoveries: 0,
    warnings: [],
    sinceCheckpoint: options.sinceCheckpoint ?? 0,
    sawCheckpoint: false,
    expectSeen: false,
    missingNewline: false,
  }
  const warn = (message: string) => {
    if (report.warnings.length < MAX_WARNINGS) report.warnings.push(message)
  }
  const fail = (line: number, reason: string, seq?: number): ScanResult => {
    report.ok = false
    report.error = seq === undefined ? { line, reason } : { line, seq, reason }
    delete report.tornTail
    return report
  }
  let torn: { line: number; bytes: number; terminated: boolean; hash: Hash } | undefined
  let lastTime: string | undefined
  let lastLine = 0

  for await (const raw of readLines(path)) {
    lastLine = raw.line
    let parsed: unknown
    try {
      parsed = raw.bytes.length === 0 ? undefined : JSON.parse(raw.bytes.toString('utf8'))
    } catch {
      parsed = undefined
    }
    if (parsed === undefined || typeof parsed !== 'object' || parsed === null) {
      // Not a record at all: a crash can leave such bytes; they must be accounted for by a
      // recovery record right after them, or be the very end of the file.
      torn ??= { line: raw.line, bytes: 0, terminated: false, hash: createHash('sha256') }
      torn.hash.update(raw.bytes)
      torn.bytes += raw.bytes.length
      if (raw.terminated) {
        torn.hash.update('\n')
        torn.bytes += 1
      }
      torn.terminated = raw.terminated
      continue
    }
    // A JSON object cannot be a strict prefix of a record line, so an object without its newline
    // is a whole record whose newline was lost: it is checked like any other record.
    if (!raw.terminated) report.missingNewline = true
    if (!isRecordShape(parsed))
      return fail(raw.line, 'not an audit record (seq, type, prev or hash missing or malformed)')
    const record = parsed
    const text = raw.bytes.toString('utf8')
    if (encodeJsonLine(record) !== text) {
      return fail(
        raw.line,
        'record is not in its canonical single-line encoding (it was edited)',
        record.seq,
      )
    }
    if (hashRecord(record) !== record.hash && legacyHashRecord(record) !== record.hash) {
      return fail(
        raw.line,
        'record hash does not match its content (the record was edited)',
        record.seq,
      )
    }
    if (torn) {
      const claim = record.torn as { line?: unknown; bytes?: unknown; sha256?: unknown } | undefined
      const digest = `sha256:${torn.hash.copy().digest('hex')}`
      if (record.type !== 'recovery' || claim === undefined) {
        return fail(
          torn.line,
          `unparseable bytes (${torn.bytes}) in the middle of the file, not accounted for by a recovery record`,
        )
      }
      if (claim.line !== torn.line || claim.bytes !== torn.bytes || claim.sha256 !== digest) {
        return fail(
          torn.line,
          `torn bytes at line ${torn.line} do not match the recovery record at line ${raw.line}`,
          record.seq,
        )
      }
      torn = undefined
    } else if (record.type === 'recovery') {
      return fail(raw.line, 'recovery record names torn bytes that are not in the file', record.seq)
    }

    if (report.records === 0 && options.continues === undefined) {
      report.startsFrom = record.prev
      if (record.prev === GENESIS_HASH) {
        if (record.seq !== 1)
          return fail(
            raw.line,
            `first record of a chain must have seq 1, found ${record.seq}`,
            record.seq,
          )
      } else if (record.type === 'rotation' || record.type === 'recovery') {
        warn(
          `chain continues from an earlier file (seq ${record.seq - 1}${typeof record.from === 'string' ? `, ${record.from}` : ''}); verify the whole chain with verifyAuditChain`,
        )
      } else {
        return fail(
          raw.line,
          'first record neither starts the chain nor continues a rotated file (records before it are missing)',
          record.seq,
        )
      }
    } else {
      const expected = report.lastSeq + 1
      if (record.seq !== expected) {
        const kind = record.seq < expected ? 'duplicated or reordered record' : 'records missing'
        return fail(raw.line, `${kind}: expected seq ${expected}, found ${record.seq}`, record.seq)
      }
      if (record.prev !== report.headHash) {
        return fail(
          raw.line,
          `chain broken: prev does not match the hash of record ${report.lastSeq}`,
          record.seq,
        )
      }
    }

    if (record.type === 'checkpoint') {
      if (options.publicKey !== undefined) {
        const problem = await checkSignature(record, options.publicKey)
        if (problem) return fail(raw.line, problem, record.seq)
      }
      report.checkpoints += 1
      report.sawCheckpoint = true
      report.sinceCheckpoint = 0
      report.lastCheckpoint = { seq: record.seq, hash: record.hash }
    } else if (record.type === 'recovery') {
      report.recoveries += 1
    } else {
      report.sinceCheckpoint += 1
      const every = options.checkpointEvery
      if (every !== undefined && every > 0 && report.sinceCheckpoint > every) {
        return fail(
          raw.line,
          `checkpoint missing: more than ${every} records since the last one`,
          record.seq,
        )
      }
    }
    if (typeof record.time === 'string') {
      if (lastTime !== undefined && record.time < lastTime)
        warn(`time goes backwards at seq ${record.seq} (${record.time} < ${lastTime})`)
      lastTime = record.time
    }
    if (record.seq === options.expectRecord?.seq) {
      if (record.hash !== options.expectRecord.hash)
        return fail(raw.line, 'record differs from the expected (anchored) record', record.seq)
      report.expectSeen = true
    }
    for (const anchor of options.anchors ?? []) {
      if (record.seq === anchor.seq && record.hash !== anchor.hash) {
        return fail(raw.line, 'record differs from the one the chain head names', record.seq)
      }
    }
    report.records += 1
    report.firstSeq ??= record.seq
    report.firstType ??= record.type
    report.lastSeq = record.seq
    report.headHash = record.hash
  }

  if (report.missingNewline) warn(`the last record (seq ${report.lastSeq}) lacks its newline`)
  if (torn) {
    report.tornTail = torn
    warn(
      `verifies up to record ${report.lastSeq}; trailing partial line at line ${torn.line} (${torn.bytes} bytes, likely a crash mid-write)`,
    )
  }
  if (
    options.expectRecord !== undefined &&
    !report.expectSeen &&
    options.expectInThisFile !== false
  ) {
    return fail(
      lastLine,
      `truncated: expected record seq ${options.expectRecord.seq} is missing (file ends at seq ${report.lastSeq})`,
    )
  }
  return report
}

async function checkSignature(
  record: Record<string, unknown> & { seq: number; prev: string },
  key: KeyInput,
): Promise<string | undefined> {
  if (typeof record.sig !== 'string') return 'checkpoint has no signature'
  let payload: unknown
  try {
    const verified = await compactVerify(record.sig, key, { algorithms: ['ES256'] })
    payload = JSON.parse(new TextDecoder().decode(verified.payload))
  } catch {
    return 'checkpoint signature does not verify with the given public key'
  }
  const p = payload as { seq?: unknown; hash?: unknown }
  if (p.seq !== record.seq - 1 || p.hash !== record.prev) {
    return `checkpoint signature covers seq ${String(p.seq)}, not the chain before it (seq ${record.seq - 1})`
  }
  return undefined
}

function publicReport(scan: ScanResult): VerifyReport {
  const {
    tornTail: _t,
    sinceCheckpoint: _s,
    sawCheckpoint: _c,
    firstType: _f,
    expectSeen: _e,
    missingNewline: _n,
    ...report
  } = scan
  return withWarning(report)
}

function withWarning<R extends VerifyReport>(report: R): R {
  if (report.warnings.length > 0) report.warning = report.warnings.join('; ')
  return report
}

/**
 * Verifies one audit file.
 *
 * @example
 * const report = await verifyAuditFile('audit.jsonl', { publicKey: jwk })
 * if (!report.ok) console.error(`line ${report.error?.line}: ${report.error?.reason}`)
 */
export async function verifyAuditFile(
  path: string,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  return publicReport(await scanAuditFile(path, options))
}

/**
 * Verifies rotated files as one chain, oldest first (`listAuditFiles` gives that order): each
 * file must continue the one before it (seq and hash), and only the last may end in torn bytes.
 * A chain whose first file does not start at genesis (older files removed by retention) verifies
 * with a warning.
 */
export async function verifyAuditChain(
  files: readonly string[],
  options: VerifyOptions = {},
): Promise<VerifyReport & { files: number }> {
  let continues: { seq: number; hash: string } | undefined
  let sinceCheckpoint: number | undefined
  const total: VerifyReport & { files: number } = {
    ok: true,
    records: 0,
    lastSeq: 0,
    headHash: GENESIS_HASH,
    startsFrom: GENESIS_HASH,
    checkpoints: 0,
    signaturesChecked: options.publicKey !== undefined,
    recoveries: 0,
    warnings: [],
    files: 0,
  }
  let expectSeen = false
  const live = files.at(-1)
  const head = live === undefined ? {} : await readHead(live, options.publicKey)
  if (head.error !== undefined) {
    return withWarning({
      ...total,
      ok: false,
      error: { file: headFileOf(live!), line: 0, reason: head.error },
    })
  }
  if (head.head === undefined && live !== undefined) {
    total.warnings.push(
      `${basename(live)}: no head file (${basename(headFileOf(live))}): a deleted tail is detected only with --expect`,
    )
  }
  const anchors = head.head === undefined ? [] : [head.head]
  for (const [index, file] of files.entries()) {
    const scan = await scanAuditFile(file, {
      ...options,
      anchors,
      expectInThisFile: false,
      ...(continues ? { continues } : {}),
      ...(sinceCheckpoint !== undefined ? { sinceCheckpoint } : {}),
    })
    total.files += 1
    if (index === 0) {
      total.startsFrom = scan.startsFrom
      total.warnings.push(...scan.warnings.map((w) => `${basename(file)}: ${w}`))
    } else {
      total.warnings.push(
        ...scan.warnings
          .filter((w) => !w.startsWith('chain continues'))
          .map((w) => `${basename(file)}: ${w}`),
      )
    }
    total.records += scan.records
    total.checkpoints += scan.checkpoints
    total.recoveries += scan.recoveries
    if (scan.firstSeq !== undefined) total.firstSeq ??= scan.firstSeq
    if (scan.lastCheckpoint) total.lastCheckpoint = scan.lastCheckpoint
    if (!scan.ok) return withWarning({ ...total, ok: false, error: { ...scan.error!, file } })
    if (
      continues !== undefined &&
      scan.records > 0 &&
      scan.firstType !== 'rotation' &&
      scan.firstType !== 'recovery'
    ) {
      return withWarning({
        ...total,
        ok: false,
        error: { file, line: 1, reason: 'file does not start with a rotation record' },
      })
    }
    if (scan.tornTail && index < files.length - 1) {
      return withWarning({
        ...total,
        ok: false,
        error: {
          file,
          line: scan.tornTail.line,
          reason: 'unparseable bytes at the end of a file that is not the newest',
        },
      })
    }
    expectSeen ||= scan.expectSeen
    continues = { seq: scan.lastSeq, hash: scan.headHash }
    sinceCheckpoint = scan.sinceCheckpoint
    total.lastSeq = scan.lastSeq
    total.headHash = scan.headHash
  }
  if (options.expectRecord && !expectSeen) {
    const reason = `truncated: expected record seq ${options.expectRecord.seq} is missing (chain ends at seq ${total.lastSeq})`
    return withWarning({
      ...total,
      ok: false,
      error: { ...(files.length > 0 ? { file: files[files.length - 1]! } : {}), line: 0, reason },
    })
  }
  if (head.head !== undefined && head.head.seq > total.lastSeq) {
    const reason = `truncated: the chain ends at seq ${total.lastSeq}, but its head (written ${head.head.time}) names seq ${head.head.seq}`
    return withWarning({ ...total, ok: false, error: { file: live!, line: 0, reason } })
  }
  return withWarning(total)
}

/** The head file of a live audit file. */
export function headFileOf(file: string): string {
  return `${file}.head.json`
}

/** What a head file says: the chain's last seq and hash when it was written. */
export interface ChainHead {
  file: string
  seq: number
  hash: string
  time: string
  sig?: string
}

/**
 * Reads the head of the chain whose live file is `file`: nothing when there is none (older
 * chains, a rotated file), an error when it is malformed, unsigned while a key is given, or
 * signed by another key.
 */
export async function readHead(
  file: string,
  publicKey?: KeyInput,
): Promise<{ head?: ChainHead; error?: string }> {
  let text: string
  try {
    text = await readFile(headFileOf(file), 'utf8')
  } catch {
    return {}
  }
  let parsed: Partial<ChainHead>
  try {
    parsed = JSON.parse(text) as Partial<ChainHead>
  } catch {
    return { error: 'the head file is not JSON' }
  }
  const { seq, hash, time, sig } = parsed
  if (
    typeof seq !== 'number' ||
    !Number.isSafeInteger(seq) ||
    seq < 1 ||
    typeof hash !== 'string' ||
    !SHA256_TAGGED.test(hash) ||
    typeof time !== 'string' ||
    typeof parsed.file !== 'string'
  ) {
    return { error: 'the head file is not a chain head (file, seq, hash, time)' }
  }
  const head: ChainHead = {
    file: parsed.file,
    seq,
    hash,
    time,
    ...(typeof sig === 'string' ? { sig } : {}),
  }
  if (publicKey === undefined) return { head }
  if (head.sig === undefined) return { error: 'the head is not signed, but a public key was given' }
  try {
    const verified = await compactVerify(head.sig, publicKey, { algorithms: ['ES256'] })
    const expected = canonicalJson({ file: head.file, seq, hash, time })
    if (new TextDecoder().decode(verified.payload) !== expected)
      return { error: 'the head signature covers another head' }
  } catch {
    return { error: 'the head signature does not verify with the given public key' }
  }
  return { head }
}

/**
 * The files of one log, oldest first: `<file>.1`, `<file>.2`, … (rotated; higher is newer),
 * then `<file>` itself when it exists.
 */
export async function listAuditFiles(file: string): Promise<string[]> {
  const dir = dirname(file)
  const base = basename(file)
  const numbered = (await readdir(dir))
    .map((name) => ({ name, n: rotatedIndex(base, name) }))
    .filter((entry): entry is { name: string; n: number } => entry.n !== undefined)
    .sort((a, b) => a.n - b.n)
    .map((entry) => join(dir, entry.name))
  const current = (await readdir(dir)).includes(base) ? [file] : []
  return [...numbered, ...current]
}

/** Files beside a chain that are not part of it: writer locks and signed heads. */
const NOT_A_CHAIN = /\.(lock|lock\.stale-[0-9a-f]+|head\.json)$/

/**
 * Every chain in a folder, each as `listAuditFiles` gives it (rotated files oldest first, the
 * live file last): the configured file's, and each segment another process wrote beside it.
 */
export async function discoverChains(dir: string): Promise<string[][]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && !NOT_A_CHAIN.test(e.name))
    .map((e) => e.name)
  const rotationOf = (name: string): string | undefined => {
    const m = /^(.*)\.([1-9][0-9]{0,8})$/.exec(name)
    return m === null ? undefined : m[1]
  }
  const bases = new Set<string>()
  for (const name of names) bases.add(rotationOf(name) ?? name)
  return Promise.all([...bases].sort().map((base) => listAuditFiles(join(dir, base))))
}

/** `n` when `name` is `<base>.<n>` (n ≥ 1, no leading zero), else undefined. */
export function rotatedIndex(base: string, name: string): number | undefined {
  if (!name.startsWith(`${base}.`)) return undefined
  const suffix = name.slice(base.length + 1)
  return /^[1-9][0-9]{0,8}$/.test(suffix) ? Number(suffix) : undefined
}
