/**
 * The append-only, hash-chained audit log (JSON lines), with rotation and signed checkpoints.
 *
 * Write-ahead: `append` resolves only once the line is written (and fsync'd with `fsync`), so the
 * engine awaits it before doing what the record announces; when it rejects, the action must not
 * happen (AUD-05: fail closed). Appends are serialised in call order, so concurrent
 * callers get consecutive seqs, and appends that arrive while a write is in flight go out
 * together in the next one, with one fdatasync for all (group commit, as databases do).
 *
 * A record that announces nothing outside the process (what the sandbox was given, what a tool
 * answered) may be appended with `{ durable: false }`: it resolves once written, and the next
 * durable append's fdatasync covers it, since a sync covers every write before it. The engine
 * uses that for `execution.start` and `call.result`, whose next step is either another
 * write-ahead decision or the execution's end, both durable before anything leaves. A crash in
 * between loses only records of work that had no effect yet, never a decision.
 *
 * Files: the live file is `<file>`; rotation renames it to `<file>.<n>` with n one above the
 * highest existing (so `.1` is the oldest, and a rotated file never changes name again, which
 * suits a shipper to WORM storage) and starts a new `<file>` whose first record is a `rotation`
 * record chained to the previous file's last hash. Seqs run on across files.
 *
 * Crash recovery: on open, the live file is verified. Bytes after its last complete record (a
 * torn write) are kept, closed with a newline, and followed by a `recovery` record that names
 * their line, length and sha256; the chain resumes from the last complete record. Nothing is
 * truncated, so the file can live on append-only storage.
 *
 * Opening reads the live file once (linear in its size, which `rotateBytes` bounds) and, with
 * checkpoints on, as many rotated files back as it takes to find the last checkpoint.
 *
 * The head: `<file>.head.json` names the chain's last seq and hash (signed with the checkpoint
 * key when one is configured, as Certificate Transparency signs its tree heads). It is rewritten
 * (by rename) at most once a second while records are written, and on close. Verify checks that
 * the chain still reaches it, so a deleted tail is detected without `--expect`: all but the
 * records of the last second before a crash.
 *
 * One writer per chain: a second `open` of the same path in this process is refused; across
 * processes a lock file beside it (writer-lock.ts) says who writes. A second process either
 * writes a segment of its own in the same folder, a chain of its own named
 * `<stem>.<time>-<pid><ext>` (`onLocked: 'segment'`, the default: `sluice run` beside `sluice
 * serve`), or is refused with `AUDIT_LOCKED` naming the holder (`onLocked: 'refuse'`). Either way
 * the chain never forks; `sluice audit verify FOLDER` checks every chain in the folder.
 *
 * @module
 */
import {
  open as openFile,
  mkdir,
  readFile,
  rename,
  writeFile,
  type FileHandle,
} from 'node:fs/promises'
import { writeSync } from 'node:fs'
import { basename, dirname, extname, resolve } from 'node:path'
import { CompactSign, importJWK, importPKCS8, type CryptoKey, type JWK, type KeyObject } from 'jose'
import { SluiceError } from '../errors.js'
import {
  DEFAULT_MAX_FIELD_CHARS,
  GENESIS_HASH,
  normaliseEvent,
  recordLineBytes,
  sealRecord,
  type AuditEvent,
  type AuditRecord,
  type TornBytes,
} from './record.js'
import { canonicalJson } from './canonical-json.js'
import { headFileOf, listAuditFiles, readHead, scanAuditFile, type ScanResult } from './verify.js'
import { describeHolder, lockWriter, type WriterLock } from './writer-lock.js'

/** Default rotation size: 64 MiB, as the config schema's default. */
export const DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024

export interface AuditLogOptions {
  /** Path of the live file; created (with its directory) when missing. */
  file: string
  /** Rotate before a record would take the file past this many bytes; 0 never rotates. Default 64 MiB. */
  rotateBytes?: number
  /** Write a signed checkpoint after every N records; 0 (default) writes none. Needs a signing key. */
  checkpointEvery?: number
  /** Private ES256 JWK that signs checkpoints. */
  signingKey?: JWK
  /** File holding the private key: a JWK (JSON) or PKCS#8 PEM. */
  signingKeyFile?: string
  /** fdatasync after every record: durability over throughput. Default true. */
  fsync?: boolean
  /** Cap of every free string in a record. Default 512. */
  maxFieldChars?: number
  /** Clock for `time`; tests freeze it. Order is carried by `seq`, never by time (AUD-07). */
  now?: () => Date
  /** When another process writes `file`: write a segment of its own (default), or refuse. */
  onLocked?: 'segment' | 'refuse'
}

const OPEN_FILES = new Set<string>()
/** The head file is rewritten at most this often while records are written. */
export const HEAD_EVERY_MS = 1000
const PROBE_TIME = new Date(0).toISOString()

interface Signer {
  key: CryptoKey | KeyObject
  kid?: string
}

/**
 * @example
 * const audit = await AuditLog.open({ file: 'audit/audit.jsonl', fsync: true })
 * await audit.append({ type: 'call.decision', executionId, tool: 'crm.find', decision: 'allow',
 *   ruleId: 'read-only', argsHash: hashArgs(args) })   // before calling the tool
 */
/** How {@link AuditLog.append} waits. */
export interface AppendOptions {
  /**
   * true (the default): resolve once the record is fdatasync'd (with `fsync`). false: resolve
   * once it is written; the next durable append, the head file or `close` syncs it.
   */
  durable?: boolean
}

interface PendingAppend {
  fields: Readonly<Record<string, unknown>>
  durable: boolean
  resolve(record: AuditRecord): void
  reject(error: unknown): void
}

export class AuditLog {
  /** Absolute path of the live file: the configured one, or this process's segment beside it. */
  readonly file: string
  /** Torn bytes found and accounted for on open (a crash mid-write before), if any. */
  readonly recovery: TornBytes | undefined
  /** Notes from the verification on open (e.g. the torn tail); never errors. */
  readonly openWarnings: readonly string[]

  #handle: FileHandle
  readonly #lock: WriterLock
  #size: number
  #seq: number
  #head: string
  #sinceCheckpoint: number
  #queue: Promise<unknown> = Promise.resolve()
  /** Appends waiting for the next flush: all of them go out in one write and one fdatasync. */
  #pending: PendingAppend[] = []
  /** Lines sealed (seq and hash assigned) but not yet written. */
  #unwritten: Buffer[] = []
  /** Written lines no fdatasync has covered yet (non-durable appends, with `fsync`). */
  #unsynced = false
  #headTimer: NodeJS.Timeout | undefined
  /** The seq the head file names (0: none written yet). */
  #headSeq = 0
  #failure: SluiceError | undefined
  #closed = false
  readonly #rotateBytes: number
  readonly #checkpointEvery: number
  readonly #fsync: boolean
  readonly #maxFieldChars: number
  readonly #now: () => Date
  readonly #signer: Signer | undefined

  private constructor(init: {
    file: string
    handle: FileHandle
    lock: WriterLock
    size: number
    seq: number
    head: string
    sinceCheckpoint: number
    rotateBytes: number
    checkpointEvery: number
    fsync: boolean
    maxFieldChars: number
    now: () => Date
    signer: Signer | undefined
    recovery: TornBytes | undefined
    openWarnings: string[]
  }) {
    this.file = init.file
    this.#handle = init.handle
    this.#lock = init.lock
    this.#size = init.size
    this.#seq = init.seq
    this.#head = init.head
    this.#sinceCheckpoint = init.sinceCheckpoint
    this.#rotateBytes = init.rotateBytes
    this.#checkpointEvery = init.checkpointEvery
    this.#fsync = init.fsync
    this.#maxFieldChars = init.maxFieldChars
    this.#now = init.now
    this.#signer = init.signer
    this.recovery = init.recovery
    this.openWarnings = init.openWarnings
  }

  /**
   * Opens (or creates) the log and resumes its chain.
   *
   * @throws TypeError on bad options; SluiceError `AUDIT_INVALID` when the existing file does not
   *   verify (edited, not merely torn): move it aside to start a new chain; `CONFIG_INVALID` for an
   *   unreadable signing key.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const settings = checkOptions(options)
    const configured = resolve(options.file)
    if (OPEN_FILES.has(configured))
      throw new TypeError(`audit file ${configured} is already open in this process`)
    const signer = await loadSigner(options)
    if (settings.checkpointEvery > 0 && signer === undefined) {
      throw new TypeError('audit checkpointEvery needs signingKey or signingKeyFile')
    }
    await mkdir(dirname(configured), { recursive: true })
    const { file, lock, warnings } = await takeChain(configured, options.onLocked ?? 'segment')
    OPEN_FILES.add(file)
    let handle: FileHandle | undefined
    try {
      const files = await listAuditFiles(file)
      const rotated = files.filter((f) => f !== file)
      const current = files.includes(file) ? await scanOrThrow(file) : undefined
      const previousFile = rotated[rotated.length - 1]
      const needPrevious = current === undefined || current.records === 0
      const previous =
        needPrevious && previousFile !== undefined
          ? await scanOrThrow(previousFile, true)
          : undefined

      const base = current !== undefined && current.records > 0 ? current : previous
      await checkHead(file, base?.lastSeq ?? 0)
      let sinceCheckpoint = 0
      if (settings.checkpointEvery > 0) {
        sinceCheckpoint = await recordsSinceCheckpoint(current, rotated, settings.checkpointEvery)
      }
      handle = await openFile(file, 'a')
      if (current === undefined && settings.fsync) await syncDirectory(dirname(file))
      const log = new AuditLog({
        file,
        handle,
        size: (await handle.stat()).size,
        seq: base?.lastSeq ?? 0,
        head: base?.headHash ?? GENESIS_HASH,
        sinceCheckpoint,
        ...settings,
        signer,
        recovery: current?.tornTail ? tornBytes(current.tornTail) : undefined,
        openWarnings: [...warnings, ...(current?.warnings ?? [])],
        lock,
      })
      if (current?.missingNewline) {
        // The last record is whole; only its newline was torn off. Complete the line.
        log.#writeRaw(Buffer.from('\n'))
      }
      const from =
        needPrevious && previousFile !== undefined ? { from: basename(previousFile) } : {}
      if (current?.tornTail) {
        log.#writeRecord(
          { type: 'recovery', ...from, torn: tornBytes(current.tornTail) },
          current.tornTail.terminated ? '' : '\n',
        )
      } else if (needPrevious && previousFile !== undefined) {
        log.#writeRecord({ type: 'rotation', ...from })
      }
      await log.#checkpointIfDue()
      await log.#commit()
      return log
    } catch (error) {
      OPEN_FILES.delete(file)
      await handle?.close().catch(() => undefined)
      await lock.release()
      throw error
    }
  }

  /** Seq of the last record written (0 for an empty chain). */
  get lastSeq(): number {
    return this.#seq
  }

  /** Hash of the last record written: the chain head. */
  get headHash(): string {
    return this.#head
  }

  /**
   * Appends one record; resolves once it is on disk (fsync'd with `fsync`), or only written with
   * `{ durable: false }`. Rejections: TypeError for a malformed event (nothing is written);
   * SluiceError `AUDIT_UNAVAILABLE` when the log is closed or a write or sync failed (the log then
   * refuses every later append: the caller must fail closed).
   */
  append(event: AuditEvent, options: AppendOptions = {}): Promise<AuditRecord> {
    let fields: ReturnType<typeof normaliseEvent>
    try {
      fields = normaliseEvent(event, this.#maxFieldChars)
    } catch (error) {
      return Promise.reject(error)
    }
    if (this.#closed)
      return Promise.reject(new SluiceError('AUDIT_UNAVAILABLE', 'the audit log is closed'))
    const appended = new Promise<AuditRecord>((resolve, reject) =>
      this.#pending.push({ fields, durable: options.durable ?? true, resolve, reject }),
    )
    // Group commit: the first append of a batch queues the flush; every append that arrives
    // before it runs rides along in the same write and the same fdatasync.
    if (this.#pending.length === 1) void this.#enqueue(() => this.#flush()).catch(() => undefined)
    this.#scheduleHead()
    return appended
  }

  /**
   * Seals every pending append in order and writes them at once; resolves the non-durable ones,
   * syncs once if any is durable, then resolves those.
   */
  async #flush(): Promise<void> {
    const batch = this.#pending.splice(0)
    const records: AuditRecord[] = []
    const settle = (durable: boolean) => {
      for (const [i, item] of batch.entries())
        if (item.durable === durable) item.resolve(records[i]!)
    }
    try {
      for (const item of batch) records.push(await this.#appendNow(item.fields))
      this.#write()
      settle(false)
      if (batch.some((item) => item.durable)) await this.#sync()
    } catch (cause) {
      this.#failure ??= new SluiceError(
        'AUDIT_UNAVAILABLE',
        `cannot write the audit log ${this.file}; refusing further records`,
        { cause },
      )
      // Settled promises ignore the second call: only what is still waiting rejects.
      for (const item of batch) item.reject(this.#failure)
      return
    }
    settle(true)
  }

  /** Writes the head file within {@link HEAD_EVERY_MS} of the last append. */
  #scheduleHead(): void {
    if (this.#headTimer !== undefined) return
    this.#headTimer = setTimeout(() => {
      this.#headTimer = undefined
      void this.#enqueue(() => this.#writeHead()).catch(() => undefined)
    }, HEAD_EVERY_MS)
    this.#headTimer.unref()
  }

  /** `<file>.head.json`: seq and hash of the last record, signed when a key is configured. */
  async #writeHead(): Promise<void> {
    if (this.#failure !== undefined || this.#seq === this.#headSeq) return
    const head: Record<string, unknown> = {
      file: basename(this.file),
      seq: this.#seq,
      hash: this.#head,
      time: this.#now().toISOString(),
    }
    if (this.#signer !== undefined) {
      const payload = new TextEncoder().encode(canonicalJson(head))
      head.sig = await new CompactSign(payload)
        .setProtectedHeader({
          alg: 'ES256',
          ...(this.#signer.kid ? { kid: this.#signer.kid } : {}),
        })
        .sign(this.#signer.key)
    }
    // The head never names a record that is not on disk, whatever the fsync setting.
    if (!this.#fsync || this.#unsynced) await this.#handle.datasync()
    this.#unsynced = false
    const target = headFileOf(this.file)
    await writeFile(`${target}.tmp`, `${JSON.stringify(head)}\n`)
    await rename(`${target}.tmp`, target)
    this.#headSeq = this.#seq
  }

  /** Waits for pending appends, writes a final checkpoint when checkpoints are on, closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#headTimer)
    try {
      await this.#enqueue(async () => {
        if (
          this.#failure === undefined &&
          this.#signer !== undefined &&
          this.#checkpointEvery > 0 &&
          this.#sinceCheckpoint > 0
        ) {
          await this.#writeCheckpoint()
          await this.#commit()
        }
      }).catch(() => undefined)
      await this.#enqueue(() => this.#writeHead()).catch(() => undefined)
    } finally {
      OPEN_FILES.delete(this.file)
      // Whatever fsync setting the records had, the file is on disk when close resolves.
      await this.#handle.sync().catch(() => undefined)
      await this.#handle.close().catch(() => undefined)
      await this.#lock.release()
    }
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task)
    this.#queue = run.catch(() => undefined)
    return run
  }

  /** Seals one record (and any checkpoint or rotation due before it) into the unwritten lines. */
  async #appendNow(fields: Readonly<Record<string, unknown>>): Promise<AuditRecord> {
    if (this.#failure) throw this.#failure
    await this.#checkpointIfDue()
    if (this.#rotateBytes > 0 && this.#size > 0) {
      // ISO times have a fixed length, so a placeholder sizes the line without reading the clock.
      const lineBytes = recordLineBytes({
        seq: this.#seq + 1,
        time: PROBE_TIME,
        ...fields,
        prev: this.#head,
      })
      if (this.#size + lineBytes + 1 > this.#rotateBytes) {
        await this.#rotate()
        await this.#checkpointIfDue()
      }
    }
    const record = this.#writeRecord(fields)
    await this.#checkpointIfDue()
    return record
  }

  /** Seals a record into the unwritten lines; {@link #commit} writes them. */
  #writeRecord(fields: Readonly<Record<string, unknown>>, prefix = ''): AuditRecord {
    const seq = this.#seq + 1
    const { record, line } = sealRecord({
      seq,
      time: this.#now().toISOString(),
      ...fields,
      prev: this.#head,
    })
    this.#writeRaw(Buffer.from(`${prefix}${line}\n`, 'utf8'))
    this.#seq = seq
    this.#head = record.hash
    if (record.type === 'checkpoint') this.#sinceCheckpoint = 0
    else if (record.type !== 'recovery') this.#sinceCheckpoint += 1
    return record
  }

  #writeRaw(bytes: Buffer): void {
    this.#unwritten.push(bytes)
    this.#size += bytes.length
  }

  /** Writes the unwritten lines in one go and syncs once (with `fsync`). */
  async #commit(): Promise<void> {
    this.#write()
    await this.#sync()
  }

  /** Writes the unwritten lines in one go. */
  #write(): void {
    if (this.#unwritten.length === 0) return
    const bytes = Buffer.concat(this.#unwritten.splice(0))
    // A synchronous write: appending a few hundred bytes to the page cache takes a few µs, while
    // an asynchronous one is two thread hand-overs (to libuv's pool and back), which cost more
    // than the write on a loaded machine and sat twice on every inner call's path. The sync,
    // when configured, is the slow part and stays asynchronous.
    let offset = 0
    while (offset < bytes.length) {
      offset += writeSync(this.#handle.fd, bytes, offset, bytes.length - offset)
    }
    this.#unsynced = true
  }

  /** fdatasync with `fsync`, if anything written is not yet covered by one. */
  async #sync(): Promise<void> {
    if (!this.#fsync || !this.#unsynced) return
    this.#unsynced = false
    try {
      await this.#handle.datasync()
    } catch (error) {
      this.#unsynced = true
      throw error
    }
  }

  async #checkpointIfDue(): Promise<void> {
    if (this.#checkpointEvery > 0 && this.#sinceCheckpoint >= this.#checkpointEvery)
      await this.#writeCheckpoint()
  }

  async #writeCheckpoint(): Promise<void> {
    const signer = this.#signer
    if (signer === undefined) return
    const payload = new TextEncoder().encode(JSON.stringify({ seq: this.#seq, hash: this.#head }))
    const sig = await new CompactSign(payload)
      .setProtectedHeader({ alg: 'ES256', ...(signer.kid ? { kid: signer.kid } : {}) })
      .sign(signer.key)
    this.#writeRecord({ type: 'checkpoint', sig })
  }

  async #rotate(): Promise<void> {
    // What is sealed so far belongs to the file being rotated out.
    await this.#commit()
    const files = await listAuditFiles(this.file)
    const highest = files.length - (files.includes(this.file) ? 1 : 0)
    const last = files[highest - 1]
    const next = (last === undefined ? 0 : Number(last.slice(this.file.length + 1))) + 1
    const target = `${this.file}.${next}`
    await this.#handle.close()
    await rename(this.file, target)
    this.#handle = await openFile(this.file, 'a')
    this.#size = 0
    if (this.#fsync) await syncDirectory(dirname(this.file))
    this.#writeRecord({ type: 'rotation', from: basename(target) })
  }
}

/** Refuses to continue a chain whose head names more than the files hold (a deleted tail). */
async function checkHead(file: string, lastSeq: number): Promise<void> {
  const { head, error } = await readHead(file)
  const problem =
    error ??
    (head !== undefined && head.seq > lastSeq
      ? `it ends at seq ${lastSeq}, but its head names seq ${head.seq}: its tail was deleted`
      : undefined)
  if (problem === undefined) return
  throw new SluiceError(
    'AUDIT_INVALID',
    `audit file ${file}: ${problem}; move it and ${basename(headFileOf(file))} aside to start a new chain, and investigate`,
  )
}

/**
 * The chain this process writes: `configured` when its lock is free, else (with `segment`) a
 * segment of its own beside it, named by time and pid so two segments never share a name.
 */
async function takeChain(
  configured: string,
  onLocked: 'segment' | 'refuse',
): Promise<{ file: string; lock: WriterLock; warnings: string[] }> {
  const first = await lockWriter(configured)
  if (first.ok) return { file: configured, lock: first.lock, warnings: [] }
  const holder = describeHolder(first.holder)
  if (onLocked === 'refuse') {
    throw new SluiceError(
      'AUDIT_LOCKED',
      `audit file ${configured} is being written by ${holder}: one writer per chain (audit.onLocked: segment writes a chain of its own beside it)`,
      { details: { file: configured, ...(first.holder ?? {}) } },
    )
  }
  const ext = extname(configured)
  const stem = configured.slice(0, configured.length - ext.length)
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  const segment = `${stem}.${stamp}-${process.pid}${ext}`
  const own = await lockWriter(segment)
  if (!own.ok) {
    throw new SluiceError(
      'AUDIT_LOCKED',
      `audit segment ${segment} is being written by ${describeHolder(own.holder)}`,
    )
  }
  return {
    file: segment,
    lock: own.lock,
    warnings: [
      `${basename(configured)} is being written by ${holder}: this process writes its own chain, ${basename(segment)}`,
    ],
  }
}

function checkOptions(options: AuditLogOptions) {
  if (typeof options?.file !== 'string' || options.file.length === 0)
    throw new TypeError('audit file must be a non-empty path')
  const rotateBytes = options.rotateBytes ?? DEFAULT_ROTATE_BYTES
  const checkpointEvery = options.checkpointEvery ?? 0
  const maxFieldChars = options.maxFieldChars ?? DEFAULT_MAX_FIELD_CHARS
  if (!Number.isSafeInteger(rotateBytes) || rotateBytes < 0)
    throw new TypeError('audit rotateBytes must be an integer ≥ 0')
  if (!Number.isSafeInteger(checkpointEvery) || checkpointEvery < 0)
    throw new TypeError('audit checkpointEvery must be an integer ≥ 0')
  if (!Number.isSafeInteger(maxFieldChars) || maxFieldChars < 16)
    throw new TypeError('audit maxFieldChars must be an integer ≥ 16')
  return {
    rotateBytes,
    checkpointEvery,
    maxFieldChars,
    fsync: options.fsync ?? true,
    now: options.now ?? (() => new Date()),
  }
}

async function loadSigner(options: AuditLogOptions): Promise<Signer | undefined> {
  let jwk: JWK | undefined = options.signingKey
  const path = options.signingKeyFile
  try {
    if (jwk === undefined && path !== undefined) {
      const text = await readFile(path, 'utf8')
      if (text.trimStart().startsWith('-----BEGIN'))
        return { key: await importPKCS8(text, 'ES256') }
      jwk = JSON.parse(text) as JWK
    }
    if (jwk === undefined) return undefined
    if (typeof jwk.d !== 'string') throw new Error('not a private key')
    const key = await importJWK(jwk, 'ES256')
    if (key instanceof Uint8Array) throw new Error('not an asymmetric key')
    return { key, ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}) }
  } catch (cause) {
    const where = path ?? 'signingKey'
    throw new SluiceError(
      'CONFIG_INVALID',
      `audit signing key (${where}) is not a private ES256 JWK or PKCS#8 PEM`,
      { cause },
    )
  }
}

async function scanOrThrow(file: string, rotated = false): Promise<ScanResult> {
  const scan = await scanAuditFile(file)
  if (!scan.ok) {
    const e = scan.error
    throw new SluiceError(
      'AUDIT_INVALID',
      `audit file ${file} does not verify (line ${e?.line}: ${e?.reason}); move it aside to start a new chain`,
      { details: { file, line: e?.line, reason: e?.reason } },
    )
  }
  if (rotated && scan.tornTail) {
    throw new SluiceError(
      'AUDIT_INVALID',
      `rotated audit file ${file} ends in torn bytes (line ${scan.tornTail.line}); it was not written by sluice`,
      {
        details: { file, line: scan.tornTail.line },
      },
    )
  }
  return scan
}

/** Records since the last checkpoint across files (enough to know whether one is due). */
async function recordsSinceCheckpoint(
  current: ScanResult | undefined,
  rotated: readonly string[],
  every: number,
): Promise<number> {
  let count = current?.sinceCheckpoint ?? 0
  if (current?.sawCheckpoint) return count
  for (let i = rotated.length - 1; i >= 0 && count < every; i--) {
    const scan = await scanOrThrow(rotated[i]!, true)
    count += scan.sinceCheckpoint
    if (scan.sawCheckpoint) break
  }
  return Math.min(count, every)
}

function tornBytes(torn: NonNullable<ScanResult['tornTail']>): TornBytes {
  const hash = torn.hash.copy()
  if (!torn.terminated) hash.update('\n')
  return {
    line: torn.line,
    bytes: torn.bytes + (torn.terminated ? 0 : 1),
    sha256: `sha256:${hash.digest('hex')}`,
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes a created or renamed entry durable; some platforms cannot open a directory: best effort.
  const handle = await openFile(dir, 'r').catch(() => undefined)
  try {
    await handle?.sync()
  } catch {
    // EINVAL/EISDIR on platforms without directory fsync.
  } finally {
    await handle?.close()
  }
}
