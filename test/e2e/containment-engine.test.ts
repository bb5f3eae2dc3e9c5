/**
 * Containment through the whole engine, with a real upstream that records every call it gets:
 * benign executions beside hostile ones each reach the upstream exactly once, and nothing the
 * guest leaves behind (a getter in the result, a job after the end) reaches the upstream or the
 * audit log once the execution is over.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'

let rt: TestRuntime
let auditFile: string

beforeAll(async () => {
  rt = await testRuntime({
    recording: true,
    config: {
      // Workers ready beforehand: starting one while both cores spin takes longer than timeoutMs.
      sandbox: { workers: 8 },
      limits: { timeoutMs: 2000 },
      audit: { file: 'audit.jsonl', fsync: false },
    },
  })
  auditFile = join(rt.dir, 'audit.jsonl')
})

afterAll(async () => {
  await rt?.close()
})

function auditRecords(): Array<Record<string, unknown>> {
  return readFileSync(auditFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe('containment through the engine', () => {
  it('12 benign executions beside a stuck builtin and an endless loop reach the upstream once each', async () => {
    const principal = rt.principal()
    const hostile = [
      rt.engine.execute(principal, 'Array(2**32-1).join("")'),
      rt.engine.execute(principal, 'for (;;) {}'),
    ]
    const benign = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        rt.engine.execute(
          principal,
          `const item = await tools.rec.read_item({ id: 'benign-${i}' })\nreturn item.title`,
        ),
      ),
    )
    expect(benign.map((r) => [r.ok, r.result])).toEqual(
      Array.from({ length: 12 }, (_, i) => [true, `Item benign-${i}`]),
    )
    const ids = rt
      .recorded()
      .filter((c) => c.tool === 'read_item')
      .map((c) => c.args.id)
      .sort()
    expect(ids).toEqual(Array.from({ length: 12 }, (_, i) => `benign-${i}`).sort())
    const [builtin, loop] = await Promise.all(hostile)
    expect(builtin?.error).toMatchObject({
      code: 'TIMEOUT',
      message: 'the execution ran longer than 2000 ms',
    })
    // The endless loop is named: the model learns where its code never ended.
    expect(loop?.error).toMatchObject({
      code: 'TIMEOUT',
      line: 1,
      message:
        'the execution ran longer than 2000 ms; the loop at line 1 has no end: add a break, or a condition that becomes false',
    })
  })

  it('a getter in the result and a job after the end call nothing: not upstream, not in the audit', async () => {
    const before = rt.recorded().length
    const result = await rt.engine.execute(
      rt.principal(),
      `Promise.resolve().then(() => Promise.resolve()).then(() => tools.rec.read_item({ id: 'after-end' }))
      return { n: 1, get leak() { tools.rec.read_item({ id: 'from-getter' }); return 2 } }`,
    )
    expect(result.ok).toBe(true)
    expect(result.result).toEqual({ n: 1 })
    expect(result.calls).toEqual([])
    expect(result.warnings).toEqual([
      {
        code: 'GETTER_IN_RESULT',
        // The line of the statement that returned it.
        line: 2,
        message: 'line 2: a getter is not run while the result is read: it was left out',
        path: 'result.leak',
      },
    ])
    expect(rt.recorded().length).toBe(before)
    const records = auditRecords()
    const end = records.findLastIndex((r) => r.type === 'execution.end')
    const start = records.findLastIndex((r) => r.type === 'execution.start')
    expect(records.slice(start, end + 1).map((r) => r.type)).toEqual([
      'execution.start',
      'execution.end',
    ])
    expect(records[end]).toMatchObject({ status: 'ok', callCount: 0 })
  })
})
