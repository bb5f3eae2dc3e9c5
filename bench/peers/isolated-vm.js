/**
 * Peer: isolated-vm 5 (the last line for Node 20), a new Isolate + Context per run. Tool calls
 * go through a host `Reference` applied with `result: { promise: true }`, so the guest gets a
 * real promise and `Promise.all` can overlap calls. isolated-vm is an optional dependency built
 * from source; when it is missing the import fails and the peer is reported as skipped.
 *
 * @module
 */
import { createRequire } from 'node:module'
import { answer, guestProgram, transpile } from '../lib/script.js'

const require = createRequire(import.meta.url)

/** Runs `ts` in a prepared Isolate + Context, then disposes of the isolate: one run each. */
async function runIn({ isolate, context }, ts) {
  try {
    const call =
      '(s, t, a) => __hostCall.apply(undefined, [s, t, a], { result: { promise: true } })'
    const program = guestProgram(transpile(ts), call, '__hostLog')
    const script = await isolate.compileScript(program)
    const json = await script.run(context, { promise: true, timeout: 30_000 })
    return JSON.parse(json)
  } finally {
    isolate.dispose()
  }
}

export async function load() {
  /** @type {typeof import('isolated-vm')} */
  const ivm = require('isolated-vm')
  const hostCall = new ivm.Reference(async (server, tool, argsJson) =>
    JSON.stringify(answer(server, tool, JSON.parse(argsJson))),
  )
  /** A new Isolate + Context with the host functions set: what a run needs before its code. */
  const prepare = async () => {
    const isolate = new ivm.Isolate({ memoryLimit: 64 })
    try {
      const context = await isolate.createContext()
      const logs = []
      await context.global.set('__hostCall', hostCall)
      await context.global.set('__hostLog', new ivm.Callback((line) => logs.push(line)))
      return { isolate, context }
    } catch (error) {
      isolate.dispose()
      throw error
    }
  }
  return {
    id: 'isolated-vm',
    label: 'isolated-vm 5.0.4, new Isolate + Context per run',
    note: 'V8 isolate in-process; its README advises a separate process for untrusted code',
    run: async (ts) => runIn(await prepare(), ts),
    async close() {
      hostCall.release()
    },
  }
}

/**
 * The same peer set up as sluice is: the next run's Isolate + Context (with its host functions)
 * is built after the previous run, off the clock, like sluice's prewarmed instance.
 */
export async function loadPrebuilt() {
  const ivm = require('isolated-vm')
  const hostCall = new ivm.Reference(async (server, tool, argsJson) =>
    JSON.stringify(answer(server, tool, JSON.parse(argsJson))),
  )
  let next
  const prepare = async () => {
    const isolate = new ivm.Isolate({ memoryLimit: 64 })
    const context = await isolate.createContext()
    await context.global.set('__hostCall', hostCall)
    await context.global.set('__hostLog', new ivm.Callback(() => undefined))
    return { isolate, context }
  }
  next = await prepare()
  return {
    id: 'isolated-vm-prebuilt',
    label: 'isolated-vm 5.0.4, Isolate + Context prebuilt off the clock',
    note: 'as sluice: the next one is built after each run, outside the timing',
    async run(ts) {
      try {
        return await runIn(next, ts)
      } finally {
        next = undefined
      }
    },
    /** Off the clock: the peers case calls it after timing each run. */
    async prepare() {
      next ??= await prepare()
    },
    async close() {
      next?.isolate.dispose()
      hostCall.release()
    },
  }
}
