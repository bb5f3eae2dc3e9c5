/**
 * Data labels against exfiltration, end to end in the engine with real upstreams: two recording
 * fixtures (`crm`, labelled `confidential`; `mail`, whose `send_email` is labelled `egress`)
 * and a slow one (`vault`, `confidential`). Once an execution has been authorised to read
 * confidential data, an egress call is `TOOL_DENIED` and never reaches the upstream, also when
 * both are issued at once; issue order decides, not arrival; a fresh execution is clean; a denied
 * read adds nothing; a failed, still running or approval-declined call adds its labels. Every
 * refusal path releases its turn, and start-up refuses a `tools:` key that names no tool.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SluiceError } from '../../src/errors.js'
import type { PolicySet } from '../../src/policy/index.js'
import { FIXTURES, SERVERS, testRuntime, type TestRuntime } from '../helpers/runtime.js'

const records = mkdtempSync(join(tmpdir(), 'sluice-labels-'))
afterAll(() => rmSync(records, { recursive: true, force: true }))

const CRM_FILE = join(records, 'crm.jsonl')
const MAIL_FILE = join(records, 'mail.jsonl')

const recording = (file: string, extra: Record<string, unknown> = {}) => ({
  command: process.execPath,
  args: [SERVERS.recording],
  env: { RECORD_FILE: file },
  ...extra,
})

const SERVERS_CONFIG = {
  crm: recording(CRM_FILE, { labels: ['confidential'] }),
  mail: recording(MAIL_FILE, { tools: { send_email: { labels: ['egress'] } } }),
  vault: {
    command: process.execPath,
    args: [join(FIXTURES, 'servers/slow.mjs')],
    labels: ['confidential'],
  },
}

const POLICY = `
rules:
  - id: our-servers
    effect: allow
    when: tool.server in ["crm", "mail", "vault"]
  - id: no-secret-reads
    effect: deny
    when: tool.server == "crm" && tool.name == "read_item" && args.id == "secret"
  - id: deletes-need-a-human
    effect: approve
    when: tool.server == "crm" && tool.name == "delete_item"
  - id: no-egress-after-confidential
    effect: deny
    when: '"egress" in tool.labels && "confidential" in execution.labels'
budgets:
  - id: no-instant-vault
    when: tool.server == "vault" && args.ms == 0
    maxCallsPerExecution: 0
`

const DENIED =
  'mail.send_email is not allowed: rule no-egress-after-confidential (tool labels: egress; execution labels: confidential)'

/** What one subject's mail got: the `send_email` calls the mail fixture recorded. */
function mailed(subject: string): unknown[] {
  if (!existsSync(MAIL_FILE)) return []
  return readFileSync(MAIL_FILE, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { tool: string; args: { subject?: string } })
    .filter((r) => r.tool === 'send_email' && r.args.subject === subject)
}

const send = (subject: string) =>
  `tools.mail.send_email({ to: 'bob@example.com', subject: ${JSON.stringify(subject)} })`

/** The guest catches the send's error and returns its code and message. */
const caught = (expr: string) =>
  `try { await ${expr}; return 'sent' } catch (e) { return { code: e.code, message: e.message } }`

describe('data labels in the engine', () => {
  let rt: TestRuntime
  beforeAll(async () => {
    rt = await testRuntime({
      policy: POLICY,
      config: { servers: SERVERS_CONFIG, audit: { file: 'audit.jsonl', fsync: false } },
    })
  })
  afterAll(() => rt?.close())

  const run = (code: string, options: Parameters<TestRuntime['engine']['execute']>[2] = {}) =>
    rt.engine.execute(rt.principal(), code, options)

  it('denies egress after a confidential read, and the mail upstream never gets the call', async () => {
    const out = await run(`await tools.crm.read_item({ id: 'a' })\n${caught(send('after-read'))}`)
    expect(out.ok).toBe(true)
    expect(out.result).toEqual({ code: 'TOOL_DENIED', message: DENIED })
    expect(out.calls.map((c) => [c.tool, c.decision])).toEqual([
      ['crm.read_item', 'allow'],
      ['mail.send_email', 'deny'],
    ])
    expect(mailed('after-read')).toEqual([])
  })

  it('denies the send of Promise.all([read, send]): issue order decides, not arrival', async () => {
    const out = await run(
      `const [read, sent] = await Promise.allSettled([
         tools.crm.read_item({ id: 'b' }),
         ${send('parallel-read-first')},
       ])
       return [read.status, sent.status === 'rejected' ? sent.reason.message : 'sent']`,
    )
    expect(out.result).toEqual(['fulfilled', DENIED])
    expect(mailed('parallel-read-first')).toEqual([])
  })

  it('allows the send of Promise.all([send, read]): the send was issued first', async () => {
    const out = await run(
      `const [sent] = await Promise.all([${send('parallel-send-first')}, tools.crm.read_item({ id: 'c' })])
       return sent`,
    )
    expect(out).toMatchObject({ ok: true, result: 'sent to bob@example.com' })
    expect(mailed('parallel-send-first')).toHaveLength(1)
  })

  it('starts every execution clean', async () => {
    await run(`await tools.crm.read_item({ id: 'd' })`)
    const out = await run(caught(send('fresh-execution')))
    expect(out.result).toBe('sent')
    expect(mailed('fresh-execution')).toHaveLength(1)
  })

  it('adds no labels for a denied call: a denied confidential read does not block egress', async () => {
    const out = await run(
      `const read = await tools.crm.read_item({ id: 'secret' }).then(() => 'read', (e) => e.code)
       const sent = await ${send('after-denied-read')}
       return [read, sent]`,
    )
    expect(out.result).toEqual(['TOOL_DENIED', 'sent to bob@example.com'])
    expect(mailed('after-denied-read')).toHaveLength(1)
  })

  it('adds the labels of an authorised call that then fails upstream', async () => {
    const out = await run(
      `const failed = await tools.crm.fail({ why: 'x' }).then(() => 'ok', (e) => e.code)
       return [failed, await ${send('after-failed-read')}.then(() => 'sent', (e) => e.message)]`,
    )
    expect(out.result).toEqual(['TOOL_ERROR', DENIED])
    expect(mailed('after-failed-read')).toEqual([])
  })

  it('adds the labels of a call that is still running when the send is decided', async () => {
    const out = await run(
      `const pending = tools.vault.slow({ ms: 20000, tag: 'in-flight' })
       pending.catch(() => undefined)
       return await ${send('while-in-flight')}.then(() => 'sent', (e) => e.message)`,
    )
    expect(out.result).toBe(DENIED)
    expect(mailed('while-in-flight')).toEqual([])
  })

  it('adds the labels of an approval when the human is asked, even when declined', async () => {
    const asked: string[] = []
    const out = await run(
      `const deleted = await tools.crm.delete_item({ id: 'e' }).then(() => 'deleted', (e) => e.code)
       return [deleted, await ${send('after-declined')}.then(() => 'sent', (e) => e.message)]`,
      {
        approve: async (request) => {
          asked.push(request.tool)
          return 'decline'
        },
      },
    )
    expect(asked).toEqual(['crm.delete_item'])
    expect(out.result).toEqual(['APPROVAL_DENIED', DENIED])
    expect(mailed('after-declined')).toEqual([])
  })

  it('adds the labels of a call its budget then refuses (policy had authorised it)', async () => {
    const out = await run(
      `const read = await tools.vault.slow({ ms: 0 }).then(() => 'read', (e) => e.code)
       return [read, await ${send('after-budget')}.then(() => 'sent', (e) => e.message)]`,
    )
    expect(out.result).toEqual(['BUDGET_EXCEEDED', DENIED])
    expect(mailed('after-budget')).toEqual([])
  })

  it('releases the turn of every call refused before its decision: later calls go on', async () => {
    const out = await run(
      `const settled = await Promise.allSettled([
         tools.crm.no_such_tool({}),
         tools.crm.read_item({ id: 7 }),
         tools.nowhere.read({}),
         ${send('after-refusals')},
       ])
       return settled.map((s) => s.status === 'fulfilled' ? 'ok' : s.reason.code)`,
    )
    expect(out.result).toEqual(['UNKNOWN_TOOL', 'INVALID_ARGS', 'UNKNOWN_TOOL', 'ok'])
    expect(mailed('after-refusals')).toHaveLength(1)
  })

  it('writes the tool labels into every call.decision record (names, never values)', async () => {
    const out = await run(
      `await tools.crm.read_item({ id: 'audited' })\n${caught(send('audited'))}`,
    )
    expect(out.result).toMatchObject({ code: 'TOOL_DENIED' })
    const lines = readFileSync(join(rt.dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const ids = new Set(
      lines.filter((l) => l.type === 'execution.start').map((l) => l.executionId as string),
    )
    const last = [...ids].at(-1)
    const decisions = lines
      .filter((l) => l.type === 'call.decision' && l.executionId === last)
      .map((l) => ({ tool: l.tool, decision: l.decision, ruleId: l.ruleId, labels: l.labels }))
    expect(decisions).toEqual([
      { tool: 'crm.read_item', decision: 'allow', ruleId: 'our-servers', labels: ['confidential'] },
      {
        tool: 'mail.send_email',
        decision: 'deny',
        ruleId: 'no-egress-after-confidential',
        labels: ['egress'],
      },
    ])
  })

  it('lists the egress tool: listing has no execution, so the rule is decided per call', () => {
    const names = rt.engine.listTools(rt.principal()).map((t) => `${t.server}.${t.name}`)
    expect(names).toContain('mail.send_email')
  })

  it('releases the turn of a call whose dispatch fails inside the host (INTERNAL)', async () => {
    const real = rt.policy
    // A policy that breaks for one tool: the dispatcher's own failure path, not a rule.
    const broken: PolicySet = {
      ...real,
      files: real.files,
      ruleIds: real.ruleIds,
      decide: (input) => {
        if (input.tool.name === 'delete_item') throw new Error('policy engine bug')
        return real.decide(input)
      },
      canList: (input) => real.canList(input),
      listVerdict: (input) => real.listVerdict(input),
      budgetsFor: (input) => real.budgetsFor(input),
      describe: () => real.describe(),
    }
    await rt.engine.reload({ config: rt.config, policy: broken })
    try {
      const out = await run(
        `const settled = await Promise.allSettled([tools.crm.delete_item({ id: 'g' }), ${send('after-internal')}])
         return settled.map((s) => s.status === 'fulfilled' ? 'ok' : s.reason.code)`,
      )
      expect(out.result).toEqual(['INTERNAL', 'ok'])
      expect(mailed('after-internal')).toHaveLength(1)
    } finally {
      await rt.engine.reload({ config: rt.config, policy: real })
    }
  })
})

describe('labels at start-up', () => {
  async function startFailure(options: Parameters<typeof testRuntime>[0]): Promise<SluiceError> {
    try {
      const rt = await testRuntime(options)
      await rt.close()
    } catch (e) {
      expect(e).toBeInstanceOf(SluiceError)
      return e as SluiceError
    }
    throw new Error('expected the start to fail')
  }

  it('refuses a tools: key that names no tool of its server, with a did-you-mean', async () => {
    const err = await startFailure({
      config: {
        servers: { mail: recording(MAIL_FILE, { tools: { send_emial: { labels: ['egress'] } } }) },
      },
    })
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.message).toMatch(
      /^invalid config \/.*\/sluice\.yaml: servers\.mail\.tools\.send_emial: server mail has no tool "send_emial" \(did you mean "send_email"\?\)$/,
    )
  })

  it('refuses a tools: key far from every tool, listing what the server has', async () => {
    const err = await startFailure({
      config: {
        servers: { mail: recording(MAIL_FILE, { tools: { teleport: { labels: ['egress'] } } }) },
      },
    })
    expect(err.message).toContain(
      'servers.mail.tools.teleport: server mail has no tool "teleport"; its tools: big, delete_item, echo_env, fail, get-sum, pay, read_item, send_email',
    )
  })

  it('refuses a policy that compares labels with one the config never declares', async () => {
    const err = await startFailure({
      config: { servers: { crm: recording(CRM_FILE, { labels: ['confidential', 'egress'] }) } },
      policy: `rules:
  - id: no-egress-after-confidential
    effect: deny
    when: '"egress" in tool.labels && "confidentail" in execution.labels'
`,
    })
    expect(err.code).toBe('POLICY_INVALID')
    expect(err.message).toMatch(
      /^invalid policy \/.*\/policy\.yaml:\n {2}- rules\[0\]\.when \(id "no-egress-after-confidential"\): label "confidentail" \(execution\.labels, line 1, column 28\) is not declared in \/.*\/sluice\.yaml \(did you mean "confidential"\?\)$/,
    )
  })
})
