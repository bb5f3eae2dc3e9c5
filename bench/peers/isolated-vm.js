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

export async function load() {
  /** @type {typeof import('isolated-vm')} */
  const ivm = require('isolated-vm')
  const hostCall = new ivm.Reference(async (server, tool, argsJson) =>
    JSON.stringify(answer(server, tool, JSON.parse(argsJson))),
  )
  return {
    id: 'isolated-vm',
    label: 'isolated-vm 5.0.4, new Isolate + Context per run',
    note: 'V8 isolate in-process; its README advises a separate process for untrusted code',
    async run(ts) {
      const isolate = new ivm.Isolate({ memoryLimit: 64 })
      try {
        const context = await isolate.createContext()
        const logs = []
        await context.global.set('__hostCall', hostCall)
        await context.global.set('__hostLog', new ivm.Callback((line) => logs.push(line)))
        const call =
          '(s, t, a) => __hostCall.apply(undefined, [s, t, a], { result: { promise: true } })'
        const program = guestProgram(transpile(ts), call, '__hostLog')
        const script = await isolate.compileScript(program)
        const json = await script.run(context, { promise: true, timeout: 30_000 })
        return JSON.parse(json)
      } finally {
        isolate.dispose()
      }
    },
    async close() {
      hostCall.release()
    },
  }
}
