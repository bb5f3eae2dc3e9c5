/**
 * SBX-19: the QuickJS module's import surface is pinned. Everything a guest could ever reach
 * outside its linear memory goes through these imports, so a dependency update that adds one
 * (a file, a clock, a socket) fails here before it ships. The names are emscripten's minified
 * ones; the table says what the glue (`emscripten-module.mjs`) binds to each.
 */
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const require = createRequire(import.meta.url)
const wasmApi = (
  globalThis as unknown as {
    WebAssembly: {
      Module: {
        new (bytes: Uint8Array): object
        imports(module: object): { module: string; name: string; kind: string }[]
      }
    }
  }
).WebAssembly

/** Import name → what the glue provides, for release-sync 0.32.0. */
const PINNED: Record<string, string> = {
  a: 'memory: the linear memory (passed in by the sandbox)',
  b: '__assert_fail: aborts the instance',
  c: 'fd_write: stdout/stderr of the C code, to the worker console; no file descriptors',
  d: 'fd_close: returns ENOSYS',
  e: 'environ_get: a fixed, fake environment (USER=web_user, …), not the host env',
  f: 'environ_sizes_get',
  g: 'normalizeModule: host callback, unused (no module loader is set)',
  h: 'loadModuleSource: host callback, unused (no module loader is set)',
  i: 'shouldInterrupt: the deadline check',
  j: '_setitimer_js: a host timer for C alarm(); QuickJS without its std library never calls it',
  k: 'emscripten_resize_heap: memory growth (a grown memory is never reused)',
  l: 'runtime keepalive clear',
  m: '_localtime_js: Date support',
  n: '_tzset_js: Date support',
  o: 'fd_seek: returns an error',
  p: 'emscripten_date_now: Date.now()',
  q: 'abort',
  r: 'proc_exit: ends the instance, not the process',
  s: 'callFunction: host functions made with newFunction (the dispatcher and the log sink)',
  t: 'freeHostRef: host callback, unused',
}

describe('SBX-19 WASM import surface', () => {
  it('is exactly the pinned list', () => {
    const path = require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm')
    const imports = wasmApi.Module.imports(new wasmApi.Module(readFileSync(path)))
    expect(imports.every((i) => i.module === 'a')).toBe(true)
    const actual = Object.fromEntries(imports.map((i) => [i.name, i.kind]))
    const expected = Object.fromEntries(
      Object.keys(PINNED).map((name) => [name, name === 'a' ? 'memory' : 'function']),
    )
    expect(actual).toEqual(expected)
  })

  it('comes from the pinned package version', () => {
    const pkg = JSON.parse(
      readFileSync(require.resolve('@jitl/quickjs-wasmfile-release-sync/package.json'), 'utf8'),
    ) as { version: string }
    // A new version may change what each minified name is bound to: re-read the glue, then re-pin.
    expect(pkg.version).toBe('0.32.0')
  })
})
