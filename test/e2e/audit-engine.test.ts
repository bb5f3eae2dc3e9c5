/**
 * The audit trail through the real engine: every execution start and end and every decision
 * (allow, deny, approval accepted and declined, budget, quarantine, invalid arguments, upstream
 * error) as the expected records, in order, with the right fields; written ahead of the upstream
 * call (a probe upstream reads the audit file when the call reaches it); no code, argument value
 * or token in the file; and `sluice audit verify` (the built CLI) says ok, then names the line of
 * every kind of tampering.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { hashArgs } from '../../src/audit/index.js'
import { createLock, writeLock } from '../../src/registry/index.js'
import { Upstream } from '../../src/upstream/index.js'
import { ROOT, testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { clientInfo, fixture } from '../upstream/helpers.js'
import { waitFor } from './catalog-helpers.js'
import { readAudit, waitForTools, type AuditLine } from './helpers.js'

const run = promisify(execFile)
const CLI = join(ROOT, 'dist', 'src', 'main.js')

const CANARY_CODE = `code-canary-${randomBytes(12).toString('hex')}`
const CANARY_ARG = `arg-canary-${randomBytes(12).toString('hex')}`
const CANARY_TOKEN = `token-canary-${randomBytes(18).toString('base64url')}`

const POLICY = `
rules:
  - id: rec-tools
    effect: allow
    when: tool.server in ["rec", "wa", "weather"]
  - id: no-external-mail
    effect: deny
    when: tool.name == "send_email" && !args.to.endsWith("@example.com")
  - id: big-payments-need-a-human
    effect: approve
    when: tool.server == "rec" && tool.name == "pay" && args.amount > 1000
budgets:
  - id: sums-per-run
    when: tool.name == "get-sum"
    maxCallsPerExecution: 1
`

/** A stdio upstream that reports what the audit file holds when a call reaches it. */
function probeSource(): string {
  const sdk = (p: string) =>
    pathToFileURL(join(ROOT, 'node_modules/@modelcontextprotocol/sdk/dist/esm', p)).href
  return `
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { McpServer } from '${sdk('server/mcp.js')}'
import { StdioServerTransport } from '${sdk('server/stdio.js')}'
import { z } from '${pathToFileURL(join(ROOT, 'node_modules/zod/index.js')).href}'
const server = new McpServer({ name: 'audit-probe', version: '1.0.0' })
server.registerTool('probe', { description: 'What the audit file holds now', inputSchema: { nonce: z.string() }, annotations: { readOnlyHint: true } }, async ({ nonce }) => {
  const argsHash = 'sha256:' + createHash('sha256').update(JSON.stringify({ nonce })).digest('hex')
  const file = process.env.AUDIT_FILE
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\\n').filter(Boolean).map((l) => JSON.parse(l)) : []
  const decision = lines.find((r) => r.type === 'call.decision' && r.argsHash === argsHash)
  const seen = { decision: decision?.decision ?? null, decisionSeq: decision?.seq ?? null, resultWritten: lines.some((r) => r.type === 'call.result' && r.argsHash === argsHash), lines: lines.length }
  return { content: [{ type: 'text', text: JSON.stringify(seen) }], structuredContent: seen }
})
await server.connect(new StdioServerTransport())
`
}

let rt: TestRuntime
let auditFile: string
let start: number
let work: string | undefined

beforeAll(async () => {
  // Pin the rug-pull fixture as it is, then start it already changed: get_weather is quarantined.
  const clean = fixture('rugpull')
  const upstream = new Upstream('weather', clean, { callTimeoutMs: 10_000, clientInfo })
  let lock: ReturnType<typeof createLock>
  try {
    lock = createLock({
      weather: {
        config: clean,
        serverInfo: upstream.health().serverInfo,
        tools: await upstream.listTools(),
      },
    })
  } finally {
    await upstream.close()
  }
  // The lock, the trigger and the probe live in a work dir of their own.
  work = mkdtempSync(join(tmpdir(), 'sluice-audit-e2e-'))
  writeFileSync(join(work, 'trigger'), '')
  writeFileSync(join(work, 'probe.mjs'), probeSource())
  await writeLock(join(work, 'weather.lock.json'), lock)
  auditFile = join(work, 'audit.jsonl')
  rt = await testRuntime({
    recording: true,
    policy: POLICY,
    config: {
      servers: {
        weather: fixture('rugpull', { RUGPULL_TRIGGER: join(work, 'trigger') }),
        wa: {
          command: process.execPath,
          args: [join(work, 'probe.mjs')],
          env: { AUDIT_FILE: auditFile },
        },
      },
      lock: { file: join(work, 'weather.lock.json'), allowUnpinned: true },
      audit: { file: auditFile, fsync: true },
    },
  })
  await waitForTools(rt, ['rec', 'wa'])
  // The changed weather server must be reconciled (and its quarantine audited) before `start`,
  // or that record lands among the execution's own.
  for (let i = 0; i < 5 && (rt.engine.health().upstreams.weather?.quarantined ?? 0) === 0; i++)
    await rt.engine.refresh('weather')
  expect(rt.engine.health().upstreams.weather?.quarantined).toBe(1)
  // The quarantine's audit record is appended in the background: wait for it in the file.
  await waitFor(
    () => readAudit(auditFile).some((r) => r.type === 'tools.quarantined'),
    'the tools.quarantined record',
  )
  start = readAudit(auditFile).length
})
afterAll(async () => {
  await rt?.close()
  if (work) rmSync(work, { recursive: true, force: true })
})

/** Records written by the execution with this id, in file order. */
const ofExecution = (records: AuditLine[], id: unknown) =>
  records.filter((r) => r.executionId === id)

describe('audit records of one execution through the engine', () => {
  let records: AuditLine[]
  let result: Awaited<ReturnType<TestRuntime['engine']['execute']>>

  beforeAll(async () => {
    const code = `
const s = "${CANARY_CODE}"
const out = {}
const attempt = async (name, f) => { try { out[name] = await f() } catch (e) { out[name] = e.code } }
await attempt("probe", () => tools.wa.probe({ nonce: "${CANARY_ARG}-probe" }))
await attempt("read", () => tools.rec.read_item({ id: "${CANARY_ARG}-read" }))
await attempt("denied", () => tools.rec.send_email({ to: "eve@evil.test", subject: "${CANARY_ARG}-mail" }))
await attempt("approved", () => tools.rec.pay({ amount: 5000, to: "${CANARY_ARG}-bob" }))
await attempt("declined", () => tools.rec.pay({ amount: 7000, to: "${CANARY_ARG}-carol" }))
await attempt("sum1", () => tools.rec["get-sum"]({ a: 1, b: 2 }))
await attempt("sum2", () => tools.rec["get-sum"]({ a: 3, b: 4 }))
await attempt("invalid", () => tools.rec.read_item({ id: 12345 }))
await attempt("failed", () => tools.rec.fail({ why: "${CANARY_ARG}-why" }))
await attempt("quarantined", () => tools.weather.get_weather({ city: "${CANARY_ARG}-city" }))
return out`
    let asked = 0
    result = await rt.engine.execute(rt.principal(), code, {
      inboundToken: CANARY_TOKEN,
      approve: async () => (++asked === 1 ? 'accept' : 'decline'),
    })
    records = readAudit(auditFile).slice(start)
  })

  it('runs the script with every outcome', () => {
    expect(result.ok).toBe(true)
    expect(result.result).toMatchObject({
      probe: { decision: 'allow', resultWritten: false },
      read: { id: `${CANARY_ARG}-read` },
      denied: 'TOOL_DENIED',
      approved: { paid: 5000 },
      declined: 'APPROVAL_DENIED',
      sum1: 3,
      sum2: 'BUDGET_EXCEEDED',
      invalid: 'INVALID_ARGS',
      failed: 'TOOL_ERROR',
      quarantined: 'QUARANTINED',
    })
  })

  it('writes the decision before the upstream sees the call, and the result after', () => {
    const probe = (result.result as { probe: { decisionSeq: number; lines: number } }).probe
    const decision = records.find((r) => r.type === 'call.decision' && r.tool === 'wa.probe')!
    expect(probe.decisionSeq).toBe(decision.seq)
    const resultRecord = records.find((r) => r.type === 'call.result' && r.tool === 'wa.probe')!
    expect(resultRecord.seq as number).toBeGreaterThan(decision.seq as number)
  })

  it('writes the expected records, in order, with the right fields', () => {
    const executionId = records[0]!.executionId
    expect(records[0]).toMatchObject({
      type: 'execution.start',
      principal: { sub: 'alice', iss: 'test' },
      codeHash: expect.stringMatching(/^sha256:/),
    })
    const mine = ofExecution(records, executionId)
    expect(mine).toHaveLength(records.length)
    const summary = mine.map((r) => [
      r.type,
      r.tool ?? null,
      r.decision ?? r.status ?? null,
      r.ruleId ?? null,
      r.code ?? null,
    ])
    expect(summary).toEqual([
      ['execution.start', null, null, null, null],
      ['call.decision', 'wa.probe', 'allow', 'rec-tools', null],
      ['call.result', 'wa.probe', 'ok', null, null],
      ['call.decision', 'rec.read_item', 'allow', 'rec-tools', null],
      ['call.result', 'rec.read_item', 'ok', null, null],
      ['call.decision', 'rec.send_email', 'deny', 'no-external-mail', 'TOOL_DENIED'],
      ['call.decision', 'rec.pay', 'approved', 'big-payments-need-a-human', null],
      ['call.result', 'rec.pay', 'ok', null, null],
      ['call.decision', 'rec.pay', 'approve', 'big-payments-need-a-human', 'APPROVAL_DENIED'],
      ['call.decision', 'rec.get-sum', 'allow', 'rec-tools', null],
      ['call.result', 'rec.get-sum', 'ok', null, null],
      ['call.decision', 'rec.get-sum', 'deny', 'sums-per-run', 'BUDGET_EXCEEDED'],
      ['call.decision', 'rec.read_item', 'deny', 'schema', 'INVALID_ARGS'],
      ['call.decision', 'rec.fail', 'allow', 'rec-tools', null],
      ['call.result', 'rec.fail', 'error', null, 'TOOL_ERROR'],
      ['call.decision', 'weather.get_weather', 'deny', 'quarantine', 'QUARANTINED'],
      ['execution.end', null, 'ok', null, null],
    ])
    const declined = mine.find((r) => r.code === 'APPROVAL_DENIED')!
    expect(declined.status).toBe('decline')
    for (const r of mine) {
      expect(r.principal).toEqual({ sub: 'alice', iss: 'test' })
      expect(r.seq).toBe((records[0]!.seq as number) + mine.indexOf(r))
      if (r.type.startsWith('call.')) {
        expect(r.argsHash).toMatch(/^sha256:[0-9a-f]{64}$/)
        expect(r.toolHash).toMatch(/^sha256:[0-9a-f]{64}$/)
      }
    }
    // Arguments are identified by their hash only.
    const denied = mine.find((r) => r.tool === 'rec.send_email')!
    expect(denied.argsHash).toBe(hashArgs({ to: 'eve@evil.test', subject: `${CANARY_ARG}-mail` }))
    const end = mine.at(-1)!
    expect(typeof end.ms).toBe('number')
    const upstreamResult = mine.find((r) => r.type === 'call.result' && r.tool === 'rec.read_item')!
    expect(typeof upstreamResult.ms).toBe('number')
  })

  it('keeps code, argument values and tokens out of the file', () => {
    const text = readFileSync(auditFile, 'utf8')
    for (const canary of [CANARY_CODE, CANARY_ARG, CANARY_TOKEN, 'eve@evil.test'])
      expect(text).not.toContain(canary)
  })

  it('records a failed execution’s end with its code', async () => {
    const from = readAudit(auditFile).length
    const out = await rt.engine.execute(
      rt.principal(),
      'await tools.rec.send_email({ to: "eve@evil.test", subject: "x" })',
    )
    expect(out.error?.code).toBe('TOOL_DENIED')
    const mine = readAudit(auditFile).slice(from)
    expect(mine.map((r) => r.type)).toEqual(['execution.start', 'call.decision', 'execution.end'])
    expect(mine[2]).toMatchObject({ status: 'error', code: 'TOOL_DENIED' })
  })

  it('syncs only the records that announce an effect: one call costs two fdatasyncs, not four', async () => {
    const from = readAudit(auditFile).length
    // node:fs/promises does not export FileHandle: take its prototype from a handle.
    const probe = await open(auditFile, 'r')
    const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void> }
    await probe.close()
    const original = proto.datasync
    // The lines in the file when each sync of this execution completed; the head file's own
    // sync (once a second, on a timer) is not the execution's and is left out.
    const synced: number[] = []
    const spy = vi.spyOn(proto, 'datasync').mockImplementation(async function (this: unknown) {
      const fromHead = new Error().stack?.includes('writeHead') === true
      await original.call(this)
      if (!fromHead) synced.push(readAudit(auditFile).length - from)
    })
    try {
      const out = await rt.engine.execute(
        rt.principal(),
        'return await tools.rec.read_item({ id: "sync-count" })',
      )
      expect(out.ok).toBe(true)
    } finally {
      spy.mockRestore()
    }
    const mine = readAudit(auditFile).slice(from)
    expect(mine.map((r) => r.type)).toEqual([
      'execution.start',
      'call.decision',
      'call.result',
      'execution.end',
    ])
    // The decision's sync also covers the start; the end's covers the result.
    expect(synced).toEqual([2, 4])
  })
})

describe('sluice audit verify on the engine’s file (built CLI)', () => {
  let lines: string[]
  let copy: string

  beforeAll(() => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true)
    lines = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean)
    expect(lines.length).toBeGreaterThan(10)
    copy = `${auditFile}.copy`
  })

  async function verify(
    content: string,
    flags: string[] = [],
  ): Promise<{ code: number; out: string; err: string }> {
    writeFileSync(copy, content)
    try {
      const { stdout, stderr } = await run(process.execPath, [
        CLI,
        'audit',
        'verify',
        copy,
        ...flags,
      ])
      return { code: 0, out: stdout, err: stderr }
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string }
      return { code: err.code, out: err.stdout, err: err.stderr }
    }
  }
  const join_ = (ls: string[]) => `${ls.join('\n')}\n`

  it('reports ok with the record count and the chain head', async () => {
    const last = JSON.parse(lines.at(-1)!) as { seq: number; hash: string }
    const { code, out, err } = await verify(join_(lines))
    expect(code).toBe(0)
    expect(out).toBe(`ok: ${lines.length} records, last seq ${last.seq}, head ${last.hash}\n`)
    // A bare copy has no head beside it, so verify cannot tell whether a tail was cut off.
    expect(err).toBe(
      'sluice audit: warning: audit.jsonl.copy: no head file (audit.jsonl.copy.head.json): a deleted tail is detected only with --expect\n',
    )
  })

  it('names the line of an edited record (a deny turned into an allow)', async () => {
    const at = lines.findIndex((l) => l.includes('"decision":"deny"'))
    const edited = [...lines]
    edited[at] = edited[at]!.replace('"decision":"deny"', '"decision":"allow"')
    const { code, out } = await verify(join_(edited))
    expect(code).toBe(1)
    expect(out).toMatch(new RegExp(`^TAMPERED: .* line ${at + 1} \\(seq \\d+\\): `))
  })

  it('names the line after a deleted record', async () => {
    const at = 5
    const { code, out } = await verify(join_([...lines.slice(0, at), ...lines.slice(at + 1)]))
    expect(code).toBe(1)
    expect(out).toContain(`line ${at + 1}`)
  })

  it('names the line of two swapped records', async () => {
    const at = 6
    const swapped = [...lines]
    ;[swapped[at], swapped[at + 1]] = [swapped[at + 1]!, swapped[at]!]
    const { code, out } = await verify(join_(swapped))
    expect(code).toBe(1)
    expect(out).toContain(`line ${at + 1}`)
  })

  it('names the line of a duplicated record', async () => {
    const at = 4
    const { code, out } = await verify(
      join_([...lines.slice(0, at + 1), lines[at]!, ...lines.slice(at + 1)]),
    )
    expect(code).toBe(1)
    expect(out).toContain(`line ${at + 2}`)
  })

  it('verifies up to the last complete record when the tail is torn, and says where', async () => {
    const torn = `${join_(lines)}${lines[3]!.slice(0, 40)}`
    const { code, out, err } = await verify(torn)
    expect(code).toBe(0)
    expect(out).toContain(`ok: ${lines.length} records`)
    expect(err).toMatch(new RegExp(`^sluice audit: warning: .*line ${lines.length + 1}`, 'm'))
  })

  it('detects a truncated tail only against a record anchored elsewhere (--expect)', async () => {
    const anchor = JSON.parse(lines.at(-1)!) as { seq: number; hash: string }
    const cut = join_(lines.slice(0, -3))
    expect((await verify(cut)).code).toBe(0)
    const { code, out } = await verify(cut, ['--expect', `${anchor.seq}:${anchor.hash}`])
    expect(code).toBe(1)
    expect(out).toBe(
      `TAMPERED: ${copy}: truncated: expected record seq ${anchor.seq} is missing (chain ends at seq ${anchor.seq - 3})\n`,
    )
    expect((await verify(join_(lines), ['--expect', `${anchor.seq}:${anchor.hash}`])).code).toBe(0)
  })

  it('refuses a malformed --expect with a usage error', async () => {
    writeFileSync(copy, join_(lines))
    const err = await run(process.execPath, [
      CLI,
      'audit',
      'verify',
      copy,
      '--expect',
      'seven',
    ]).catch((e: { code: number; stderr: string }) => e)
    expect(err).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--expect: expected SEQ:sha256:<64 hex>, got seven'),
    })
  })
})
