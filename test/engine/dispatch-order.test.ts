/**
 * The dispatcher decides calls in the order the guest issued them, whatever order they reach
 * it in. In the engine today nothing before the decision awaits, so arrival order and issue
 * order agree; a step that awaits (resolving PII tokens) would let a later call overtake an
 * earlier one. Here the arrival order is reversed on purpose: the egress call (index 1) reaches
 * the real dispatcher before the confidential read (index 0), and must still be decided after
 * it. Real parts: the recording fixture twice over stdio, the real catalogue and policy.
 */
import { context } from '@opentelemetry/api'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { Catalog } from '../../src/engine/catalog.js'
import { Dispatcher, type CallRequest } from '../../src/engine/dispatch.js'
import { LabelLedger } from '../../src/engine/labels.js'
import { BudgetTracker, loadPolicies } from '../../src/policy/index.js'
import type { CallRecord, Json } from '../../src/types.js'
import { UpstreamSet } from '../../src/upstream/index.js'
import { SERVERS } from '../helpers/runtime.js'

const dir = mkdtempSync(join(tmpdir(), 'sluice-dispatch-order-'))
const MAIL_FILE = join(dir, 'mail.jsonl')

const config = parseConfig(
  {
    servers: {
      crm: {
        command: process.execPath,
        args: [SERVERS.recording],
        env: { RECORD_FILE: join(dir, 'crm.jsonl') },
        labels: ['confidential'],
      },
      mail: {
        command: process.execPath,
        args: [SERVERS.recording],
        env: { RECORD_FILE: MAIL_FILE },
        tools: { send_email: { labels: ['egress'] } },
      },
    },
  },
  join(dir, 'sluice.yaml'),
  dir,
)

writeFileSync(
  join(dir, 'policy.yaml'),
  `rules:
  - id: all
    effect: allow
    when: "true"
  - id: no-egress-after-confidential
    effect: deny
    when: '"egress" in tool.labels && "confidential" in execution.labels'
`,
)

let upstreams: UpstreamSet
let dispatcher: Dispatcher

beforeAll(async () => {
  upstreams = new UpstreamSet(config.servers, { callTimeoutMs: 10_000 })
  const catalog = new Catalog({ config, upstreams })
  await catalog.refresh()
  dispatcher = new Dispatcher({
    config,
    catalog,
    upstreams,
    policy: loadPolicies([join(dir, 'policy.yaml')]),
    safe: (m) => m,
  })
})

afterAll(async () => {
  await upstreams?.close()
  rmSync(dir, { recursive: true, force: true })
})

function request(
  ledger: LabelLedger,
  calls: CallRecord[],
  index: number,
  server: string,
  tool: string,
  args: Record<string, Json>,
): CallRequest {
  return {
    principal: { sub: 'alice', iss: 'test', scopes: [], claims: {}, authMethod: 'local' },
    executionId: 'order-test',
    call: { server, tool, args, argsBytes: JSON.stringify(args).length, index },
    signal: new AbortController().signal,
    calls,
    budget: new BudgetTracker(),
    ledger,
    parent: context.active(),
  }
}

const mailed = (subject: string) =>
  existsSync(MAIL_FILE)
    ? readFileSync(MAIL_FILE, 'utf8')
        .split('\n')
        .filter((l) => l.includes(`"subject":"${subject}"`))
    : []

describe('Dispatcher call order', () => {
  it('decides an egress call that arrives first after the confidential read issued before it', async () => {
    const ledger = new LabelLedger()
    const calls: CallRecord[] = []
    let sendSettled = false
    const send = dispatcher
      .dispatch(
        request(ledger, calls, 1, 'mail', 'send_email', { to: 'b@example.com', subject: 'early' }),
      )
      .finally(() => {
        sendSettled = true
      })
    const read = await dispatcher.dispatch(
      request(ledger, calls, 0, 'crm', 'read_item', { id: 'x' }),
    )
    expect(read.ok).toBe(true)
    expect(await send).toEqual({
      ok: false,
      code: 'TOOL_DENIED',
      message:
        'mail.send_email is not allowed: rule no-egress-after-confidential (tool labels: egress; execution labels: confidential)',
    })
    expect(sendSettled).toBe(true)
    expect(mailed('early')).toEqual([])
    expect(ledger.labels()).toEqual(['confidential'])
  })

  it('lets a later call go on when the earlier one is refused before its decision', async () => {
    const ledger = new LabelLedger()
    const calls: CallRecord[] = []
    const send = dispatcher.dispatch(
      request(ledger, calls, 1, 'mail', 'send_email', { to: 'b@example.com', subject: 'second' }),
    )
    const refused = await dispatcher.dispatch(
      request(ledger, calls, 0, 'crm', 'read_item', { id: 42 }),
    )
    expect(refused).toMatchObject({ ok: false, code: 'INVALID_ARGS' })
    expect(await send).toEqual({ ok: true, value: 'sent to b@example.com' })
    expect(mailed('second')).toHaveLength(1)
  })
})
