/**
 * The table of model mistakes (test/fixtures/model-mistakes.js) against the real engine: a real
 * sandbox pool, the `store` MCP fixture over stdio, a policy that hides one tool. For each case
 * the first message the model reads names the code, the line and the fix in under 600
 * characters (or the run simply gives the right answer), and the code written after that
 * message gives the right answer with nothing to warn about.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  CASES,
  POLICY,
  STORE_SERVER,
  TIMEOUT_MS,
  firstMessage,
  firstMessageMatches,
  fixWorks,
} from '../fixtures/model-mistakes.js'
import { ROOT, testRuntime, type TestRuntime } from '../helpers/runtime.js'

let rt: TestRuntime
beforeAll(async () => {
  rt = await testRuntime({
    policy: POLICY,
    config: {
      servers: { store: { command: process.execPath, args: [join(ROOT, STORE_SERVER)] } },
      limits: { timeoutMs: TIMEOUT_MS },
    },
  })
})
afterAll(async () => rt?.close())

const run = (code: string) => rt.engine.execute(rt.principal(), code)

describe('the model-mistakes table', () => {
  it('has at least 40 cases with distinct ids', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40)
    expect(new Set(CASES.map((c) => c.id)).size).toBe(CASES.length)
  })

  it.each(CASES)('$id: $mistake', async (kase) => {
    const result = await run(kase.code)
    const first = firstMessage(result)
    const { expect: want } = kase
    if (want.code === undefined) {
      // No mistake to report: the right answer, nothing else.
      expect(result.error).toBeUndefined()
      expect(result.warnings).toBeUndefined()
      expect(result.result).toEqual(kase.answer)
    } else {
      expect(result.ok).toBe(want.ok === true)
      expect(first).toMatchObject({ code: want.code, line: want.line })
      expect(first?.text).toContain(want.hint)
      expect(first?.text.length).toBeLessThan(600)
    }
    expect(firstMessageMatches(kase, result)).toBe(true)

    const fixed = await run(kase.fixed)
    expect(fixed.error).toBeUndefined()
    expect(fixed.warnings).toBeUndefined()
    expect(fixed.result).toEqual(kase.answer)
    if (kase.logs !== undefined) expect(fixed.logs).toEqual(kase.logs)
    expect(fixWorks(kase, fixed)).toBe(true)
  })
})
