/**
 * Integrity and recovery domain: the audit chain verified now (the configured file and the
 * segments other processes wrote beside it), and the records that carry PII counts, counted for
 * the input and output domain.
 *
 * @module
 */
import { createReadStream, existsSync } from 'node:fs'
import { basename, dirname, extname } from 'node:path'
import { createInterface } from 'node:readline'
import { discoverChains, listAuditFiles, verifyAuditChain } from '../../audit/index.js'
import type { Config } from '../../config/index.js'
import type { Control, ControlStatus } from './types.js'
import { count, shown } from './util.js'

/** Record types whose `pii` field counts values found or resolved (kind → count). */
export const PII_RECORD_TYPES: ReadonlySet<string> = new Set([
  'execution.end',
  'call.result',
  'call.decision',
])

export interface AuditFacts {
  file?: string
  files: string[]
  ok?: boolean
  records?: number
  lastSeq?: number
  head?: string
  lastCheckpoint?: { seq: number; hash: string }
  error?: string
  fsync?: boolean
  checkpointEvery?: number
  /** Chains other processes wrote beside the configured file (`audit.onLocked: segment`). */
  segments: Array<{ files: string[]; ok: boolean; records: number; error?: string }>
  /** Over the configured chain and its segments: records read, those with `pii`, and the sums. */
  pii: { records: number; withPii: number; byKind: Record<string, number> }
}

const EMPTY_PII = (): AuditFacts['pii'] => ({ records: 0, withPii: 0, byKind: {} })

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** `<stem>.<time>-<pid><ext>`, as src/audit names a segment. */
function segmentPattern(file: string): RegExp {
  const ext = extname(file)
  const stem = basename(file).slice(0, basename(file).length - ext.length)
  return new RegExp(`^${escapeRegExp(stem)}\\.\\d{8}T\\d{6}Z-\\d+${escapeRegExp(ext)}$`)
}

function describeError(e: { file?: string; line: number; reason: string } | undefined): string {
  return e
    ? `${e.file ? `${shown(e.file)} ` : ''}line ${e.line}: ${e.reason}`
    : 'verification failed'
}

/** Counts records (lines that parse) and those of {@link PII_RECORD_TYPES} with a `pii` object. */
async function countPii(files: readonly string[], into: AuditFacts['pii']): Promise<void> {
  for (const file of files) {
    const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity })
    try {
      for await (const line of lines) {
        let record: { type?: unknown; pii?: unknown }
        try {
          record = JSON.parse(line) as typeof record
        } catch {
          continue
        }
        into.records++
        const pii = record.pii
        if (typeof record.type !== 'string' || !PII_RECORD_TYPES.has(record.type)) continue
        if (pii === null || typeof pii !== 'object') continue
        into.withPii++
        for (const [kind, n] of Object.entries(pii))
          if (typeof n === 'number') into.byKind[kind] = (into.byKind[kind] ?? 0) + n
      }
    } finally {
      lines.close()
    }
  }
}

export async function auditFacts(config: Config): Promise<AuditFacts> {
  if (!config.audit) return { files: [], segments: [], pii: EMPTY_PII() }
  const configured = config.audit.file
  const facts: AuditFacts = {
    file: shown(configured),
    files: [],
    fsync: config.audit.fsync,
    checkpointEvery: config.audit.signingKeyFile ? config.audit.checkpointEvery : 0,
    segments: [],
    pii: EMPTY_PII(),
  }
  if (!existsSync(dirname(configured))) return facts
  const files = await listAuditFiles(configured)
  facts.files = files.map(shown)
  if (files.length > 0) {
    const report = await verifyAuditChain(files)
    facts.ok = report.ok
    facts.records = report.records
    facts.lastSeq = report.lastSeq
    facts.head = report.headHash
    if (report.lastCheckpoint) facts.lastCheckpoint = report.lastCheckpoint
    if (!report.ok) facts.error = describeError(report.error)
  }
  const pattern = segmentPattern(configured)
  const segments = (await discoverChains(dirname(configured))).filter(
    (chain) => chain.length > 0 && pattern.test(basename(chain.at(-1)!).replace(/\.\d+$/, '')),
  )
  for (const chain of segments) {
    const report = await verifyAuditChain(chain)
    facts.segments.push({
      files: chain.map(shown),
      ok: report.ok,
      records: report.records,
      ...(report.ok ? {} : { error: describeError(report.error) }),
    })
  }
  await countPii([...files, ...segments.flat()], facts.pii)
  return facts
}

function chainLines(audit: AuditFacts): { lines: string[]; status: ControlStatus } {
  if (audit.files.length === 0)
    return { lines: [`${audit.file} (no records yet)`], status: 'enforced' }
  if (!audit.ok)
    return { lines: [`audit chain DOES NOT verify: ${audit.error}`], status: 'partial' }
  const lines = [
    `audit chain head: seq ${audit.lastSeq}, ${audit.head} (${audit.records} records in ${audit.files.join(', ')})`,
  ]
  if (audit.lastCheckpoint)
    lines.push(
      `last signed checkpoint: seq ${audit.lastCheckpoint.seq}, ${audit.lastCheckpoint.hash}`,
    )
  return { lines, status: 'enforced' }
}

export function integrityDomain(audit: AuditFacts): Control[] {
  const control = {
    id: 'INT-1',
    domain: 'integrity and recovery' as const,
    control:
      'Every decision is written ahead to a hash-chained audit log; tampering is detectable (`sluice audit verify`)',
  }
  if (audit.file === undefined)
    return [
      {
        ...control,
        status: 'absent',
        observed: 'read audit in the config: none',
        evidence: ['no audit file configured'],
      },
    ]
  const chain = chainLines(audit)
  let status = chain.status
  const brokenSegment = audit.segments.some((s) => !s.ok)
  if (brokenSegment || (status === 'enforced' && !audit.fsync)) status = 'partial'
  return [
    {
      ...control,
      status,
      observed: `verified the hash chain of ${audit.files.length} file(s) (${count(audit.records ?? 0)} records) and ${audit.segments.length} segment chain(s) beside it`,
      evidence: [
        ...chain.lines,
        ...audit.segments.map((s) =>
          s.ok
            ? `segment ${s.files.at(-1)}: ${s.records} records, verifies`
            : `segment ${s.files.at(-1)} DOES NOT verify: ${s.error}`,
        ),
        `fsync before each effect (decisions, execution ends): ${audit.fsync ? 'on' : 'off (a crash may lose the newest records)'}`,
        `signed checkpoints: ${audit.checkpointEvery ? `every ${audit.checkpointEvery} records` : 'off'}`,
      ],
    },
  ]
}
