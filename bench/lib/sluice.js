/**
 * The bench's door to sluice: it imports the **built** sandbox (`dist/src/sandbox/index.js`) as a
 * user of the package would, and turns "not built" into a skip with a reason instead of a crash.
 *
 * @module
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import { answer } from './script.js'

/** The built sandbox module. `SLUICE_BENCH_SANDBOX` may point at another file with the same API. */
export const SANDBOX_URL = process.env.SLUICE_BENCH_SANDBOX
  ? pathToFileURL(process.env.SLUICE_BENCH_SANDBOX)
  : new URL('../../dist/src/sandbox/index.js', import.meta.url)

/** A case or engine that cannot run here; its message is the reason shown in the report. */
export class SkipError extends Error {}

/** Imports the built sandbox, or throws `SkipError` naming what is missing. */
export async function loadSandbox() {
  try {
    const mod = await import(SANDBOX_URL.href)
    if (typeof mod.SandboxPool?.create !== 'function') {
      throw new Error('it does not export SandboxPool.create')
    }
    return mod
  } catch (error) {
    const where = fileURLToPath(SANDBOX_URL)
    throw new SkipError(
      `sluice sandbox not loadable from ${where}: ${error.code ?? error.message} ` +
        '(run `npm run build` at the repository root)',
    )
  }
}

/** A fresh pool; the caller closes it. */
export async function createPool(options) {
  const { SandboxPool } = await loadSandbox()
  return SandboxPool.create(options)
}

/**
 * An `onCall` that answers from the canned in-process tools, after `delayMs` when given
 * (honouring the abort signal). `stats.maxInFlight` records the most calls seen at once.
 */
export function inProcessTools(delayMs = 0) {
  const stats = { calls: 0, inFlight: 0, maxInFlight: 0 }
  const onCall = async (call, signal) => {
    stats.calls++
    stats.inFlight++
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)
    try {
      if (delayMs > 0) await delay(delayMs, signal)
      return { ok: true, value: answer(call.server, call.tool, call.args) }
    } catch (error) {
      return { ok: false, code: 'TOOL_ERROR', message: String(error?.message ?? error) }
    } finally {
      stats.inFlight--
    }
  }
  return { onCall, stats }
}

function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'))
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        reject(new Error('aborted'))
      },
      { once: true },
    )
  })
}

/** Runs one execution and throws unless it succeeded: a benchmark of failures measures nothing. */
export async function executeOk(pool, request) {
  const res = await pool.execute(request)
  if (!res.ok) {
    const e = res.error ?? {}
    throw new Error(`sluice execution failed: ${e.code}: ${e.message} (line ${e.line ?? '?'})`)
  }
  return res
}
