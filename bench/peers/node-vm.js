/**
 * Peer: `node:vm`, a new context per run. Not a security boundary (the guest can reach the host
 * through prototype chains of anything passed in); it is here as the "no isolation" floor.
 *
 * @module
 */
import vm from 'node:vm'
import { answer, guestProgram, transpile } from '../lib/script.js'

export async function load() {
  return {
    id: 'node-vm',
    label: 'node:vm, new context per run',
    note: 'insecure baseline: not a security boundary',
    async run(ts) {
      const logs = []
      const context = vm.createContext({
        __hostCall: async (server, tool, argsJson) =>
          JSON.stringify(answer(server, tool, JSON.parse(argsJson))),
        __hostLog: (line) => logs.push(line),
      })
      const program = guestProgram(transpile(ts), '__hostCall', '__hostLog')
      const json = await vm.runInContext(program, context, { timeout: 30_000 })
      return JSON.parse(json)
    },
    async close() {},
  }
}
