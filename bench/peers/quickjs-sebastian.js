/**
 * Peer: `@sebastianwessel/quickjs` 3.1.0 `runSandboxed` on its default quickjs-ng sync variant.
 * The WASM module is loaded once; each run gets a fresh runtime with the library's own setup
 * (virtual fs, module loader, polyfills). Tools are an `env` function returning a promise.
 *
 * @module
 */
import { answer, guestProgram, transpile } from '../lib/script.js'

export async function load() {
  const { loadQuickJs } = await import('@sebastianwessel/quickjs')
  const variant = (await import('@jitl/quickjs-ng-wasmfile-release-sync')).default
  const { runSandboxed } = await loadQuickJs(variant)
  return {
    id: 'sebastianwessel-quickjs',
    label: '@sebastianwessel/quickjs 3.1.0 runSandboxed (ng-sync)',
    note: 'sets up memfs, module loader and polyfills on every run',
    async run(ts) {
      const logs = []
      const program = guestProgram(transpile(ts), 'env.call', 'env.log')
      const options = {
        executionTimeout: 30_000,
        memoryLimit: 64 * 1024 * 1024,
        env: {
          call: async (server, tool, argsJson) =>
            JSON.stringify(answer(server, tool, JSON.parse(argsJson))),
          log: (line) => {
            logs.push(line)
          },
        },
        console: { log: (...a) => logs.push(a.join(' ')) },
      }
      const out = await runSandboxed(
        async ({ evalCode }) => evalCode(`export default await ${program}`),
        options,
      )
      if (!out.ok) throw new Error(`${out.error?.name}: ${out.error?.message}`)
      return JSON.parse(out.data)
    },
    async close() {},
  }
}
