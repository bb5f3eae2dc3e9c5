/**
 * The sandbox probe: a handful of tiny executions in a fresh one-worker pool with this config's
 * limits, so the sandbox controls report what the real sandbox did, not what it is meant to do.
 * About half a second: one worker starts, five executions run (one to its probe deadline).
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { Config } from '../../config/index.js'
import { SandboxPool, type SandboxCallOutcome } from '../../sandbox/index.js'
import { message } from './util.js'

/** Globals that would hand the guest a capability of the host (network, files, processes, modules). */
export const AMBIENT_GLOBALS = [
  'fetch',
  'XMLHttpRequest',
  'WebSocket',
  'require',
  'process',
  'module',
  'Buffer',
  'Deno',
  'Bun',
  'std',
  'os',
  'WebAssembly',
] as const

/** Above this, probing maxToolCalls + 1 calls costs more than a report should. */
export const MAX_PROBED_TOOL_CALLS = 1000
/** The busy loop's deadline: the configured timeoutMs is the same check, only later. */
export const TIMEOUT_PROBE_MS = 100

export interface SandboxFacts {
  /** Why the probe did not run; every other field is then empty. */
  error?: string
  /** Of {@link AMBIENT_GLOBALS}, those a fresh sandbox defines. */
  ambient: string[]
  /** A global set by the first execution was undefined in the second. */
  freshGlobals?: boolean
  /** The two executions' instance ids (they differ: one instance per execution). */
  instances: string[]
  memory?: {
    /** The first execution's needle was found in its memory after it ran (the scan works). */
    needleAfterRun: boolean
    /** …and in the second execution's memory before its code ran. */
    needleAtStart: boolean
    nonZeroBytesBeforeInstantiation: number
    recycledFrom?: string
  }
  callLimit?:
    { limit: number; hostCalls: number; code?: string } | { limit: number; skipped: string }
  memoryLimit?: { limitBytes: number; code?: string }
  timeout?: { probeMs: number; configuredMs: number; code?: string; ms: number }
}

export type SandboxProbe = (config: Config) => Promise<SandboxFacts>

const OK: SandboxCallOutcome = { ok: true, value: null }

/** Runs the probe in a pool of its own, closed before it returns. */
export async function probeSandbox(config: Config): Promise<SandboxFacts> {
  let pool: SandboxPool | undefined
  try {
    pool = await SandboxPool.create({
      workers: 1,
      maxWorkers: 1,
      prewarm: 1,
      inspectMemory: true,
      defaultLimits: config.limits,
    })
    return await runProbes(pool, config)
  } catch (cause) {
    return { error: `the sandbox did not start: ${message(cause)}`, ambient: [], instances: [] }
  } finally {
    await pool?.close()
  }
}

async function runProbes(pool: SandboxPool, config: Config): Promise<SandboxFacts> {
  const run = (code: string, limits = {}, onCall = async () => OK) =>
    pool.execute({ code, manifest: { evidence: { probe: 'probe' } }, limits, onCall })
  const needle = `sluice-evidence-${randomBytes(8).toString('hex')}`
  const first = await pool.execute(
    {
      code: `globalThis.leftover = ${JSON.stringify(needle)} + ''; return ${JSON.stringify(AMBIENT_GLOBALS)}.filter((n) => typeof globalThis[n] !== 'undefined')`,
      manifest: {},
      onCall: async () => OK,
    },
    { inspectMemory: { needles: [needle] } },
  )
  if (!first.ok || !Array.isArray(first.result))
    return {
      error: `the probe execution failed: ${first.error?.message ?? 'it returned no list'}`,
      ambient: [],
      instances: [],
    }
  const second = await pool.execute(
    { code: 'return typeof globalThis.leftover', manifest: {}, onCall: async () => OK },
    { inspectMemory: { needles: [needle] } },
  )
  const facts: SandboxFacts = {
    ambient: first.result.map(String),
    freshGlobals: second.ok && second.result === 'undefined',
    instances: [first.instanceId, second.instanceId],
    // Without both inspections there is nothing to say about the memory (IO-2 stays partial).
    ...(first.memory && second.memory
      ? {
          memory: {
            needleAfterRun: first.memory.needlesAfterRun.includes(needle),
            needleAtStart: second.memory.needlesAtStart.includes(needle),
            nonZeroBytesBeforeInstantiation: second.memory.nonZeroBytesBeforeInstantiation,
            ...(second.memory.recycledFrom ? { recycledFrom: second.memory.recycledFrom } : {}),
          },
        }
      : {}),
  }
  const limit = config.limits.maxToolCalls
  if (limit > MAX_PROBED_TOOL_CALLS) {
    facts.callLimit = { limit, skipped: `over ${MAX_PROBED_TOOL_CALLS} calls` }
  } else {
    let hostCalls = 0
    const calls = await run(
      `for (let i = 0; i < ${limit + 1}; i++) await tools.evidence.probe({})`,
      { maxToolCalls: limit },
      async () => {
        hostCalls++
        return OK
      },
    )
    facts.callLimit = { limit, hostCalls, ...(calls.error ? { code: calls.error.code } : {}) }
  }
  const bytes = config.limits.memoryBytes
  const memory = await run(`return new Uint8Array(${bytes}).length`)
  facts.memoryLimit = { limitBytes: bytes, ...(memory.error ? { code: memory.error.code } : {}) }
  const probeMs = Math.min(TIMEOUT_PROBE_MS, config.limits.timeoutMs)
  const loop = await run('for (;;) {}', { timeoutMs: probeMs })
  facts.timeout = {
    probeMs,
    configuredMs: config.limits.timeoutMs,
    ms: Math.round(loop.timings.totalMs),
    ...(loop.error ? { code: loop.error.code } : {}),
  }
  return facts
}
