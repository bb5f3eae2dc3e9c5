/**
 * Shared test harness for the sandbox suites: a pool, a recording tool callback, and the
 * "the same pool still runs the next execution" check every hostile test ends with.
 */
import { expect } from 'vitest'
import {
  SandboxPool,
  type ExecuteRequest,
  type SandboxCall,
  type SandboxCallOutcome,
  type SandboxLimits,
  type SandboxOutcome,
  type ToolManifest,
} from '../../src/sandbox/index.js'

export const MANIFEST: ToolManifest = {
  s: { echo: 'echo', slow: 'slow', fail: 'fail', boom: 'boom', big: 'big', get_sum: 'get-sum' },
  'my-server': { ping: 'ping' },
}

export interface Recorder {
  calls: SandboxCall[]
  signals: AbortSignal[]
  inFlight: number
  maxInFlight: number
  onCall(call: SandboxCall, signal: AbortSignal): Promise<SandboxCallOutcome>
}

/** A tool callback: `echo` returns its args, `slow` waits `args.ms`, `fail` fails, `boom` throws. */
export function recorder(
  overrides: Partial<Record<string, (call: SandboxCall) => unknown>> = {},
): Recorder {
  const r: Recorder = {
    calls: [],
    signals: [],
    inFlight: 0,
    maxInFlight: 0,
    async onCall(call, signal) {
      r.calls.push(call)
      r.signals.push(signal)
      r.inFlight++
      r.maxInFlight = Math.max(r.maxInFlight, r.inFlight)
      try {
        const custom = overrides[call.tool]
        if (custom) return { ok: true, value: (await custom(call)) as never }
        switch (call.tool) {
          case 'slow': {
            const ms = (call.args as { ms?: number }).ms ?? 20
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, ms)
              signal.addEventListener('abort', () => {
                clearTimeout(t)
                resolve()
              })
            })
            return { ok: true, value: { waited: ms } }
          }
          case 'fail':
            return { ok: false, code: 'TOOL_ERROR', message: 'the upstream reported an error' }
          case 'boom':
            throw new Error('ENOENT: no such file /work/main/node_modules/secret/config.json')
          default:
            return { ok: true, value: call.args }
        }
      } finally {
        r.inFlight--
      }
    },
  }
  return r
}

export function createPool(
  options: Parameters<typeof SandboxPool.create>[0] = {},
): Promise<SandboxPool> {
  return SandboxPool.create({ workers: 2, prewarm: 1, watchdogGraceMs: 300, ...options })
}

export async function run(
  pool: SandboxPool,
  code: string,
  limits: Partial<SandboxLimits> = {},
  rec: Recorder = recorder(),
  extra: Partial<ExecuteRequest> = {},
): Promise<SandboxOutcome> {
  return pool.execute({
    code,
    manifest: MANIFEST,
    limits,
    onCall: (c, s) => rec.onCall(c, s),
    ...extra,
  })
}

/** Every hostile test ends here: the same pool still runs a normal execution. */
export async function expectHealthy(pool: SandboxPool): Promise<void> {
  const outcome = await run(
    pool,
    'const a: number = await tools.s.echo({ n: 6 }).then((r: any) => r.n)\na * 7',
  )
  expect(outcome.error).toBeUndefined()
  expect(outcome.result).toBe(42)
}

/** No message, log or stack that reaches the model may name a host path or frame. */
export function expectNoHostDetail(outcome: SandboxOutcome): void {
  const text = JSON.stringify(outcome)
  expect(text).not.toMatch(/\/work\/|node_modules|file:\/\/|\.mjs|worker\.ts|pool\.ts|prelude/)
}
