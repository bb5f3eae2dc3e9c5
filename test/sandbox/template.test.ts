/**
 * Instance templates (src/sandbox/template.ts) against the real QuickJS module: a replayed
 * instance works like one built in full, and a build that strays from the recording is refused.
 */
import { describe, expect, it } from 'vitest'
import type { QuickJSWASMModule } from 'quickjs-emscripten-core'
import { record, replay, TemplateMismatch } from '../../src/sandbox/template.js'
import { freshModule } from './quickjs.js'

const SETUP =
  'globalThis.greet = (name) => "hello " + name; globalThis.kept = Array.from({ length: 1000 }, (_, i) => i); 1'

function build(module: QuickJSWASMModule, source: string) {
  return () => {
    const rt = module.newRuntime()
    const ctx = rt.newContext()
    ctx.unwrapResult(ctx.evalCode(source)).dispose()
    return { rt, ctx }
  }
}

describe('instance templates', () => {
  it('replays into a fresh instance that runs, allocates and disposes like one built in full', async () => {
    const first = await freshModule()
    const { value: original, template } = record(
      first.module.getFFI(),
      first.memory,
      build(first.module, SETUP),
    )
    // The stamp is the few pages QuickJS wrote, not the 16 MiB memory.
    expect(template.bytes).toBeGreaterThan(0)
    expect(template.bytes).toBeLessThan(1024 * 1024)
    expect(template.tape.map((entry) => entry.name)).toEqual([
      'QTS_NewRuntime',
      'QTS_NewContext',
      'QTS_Eval',
      'QTS_ResolveException',
      'QTS_FreeValuePointer',
    ])

    const second = await freshModule()
    // The source is not evaluated again (QTS_Eval is answered from the tape): state comes from
    // the stamped pages.
    const { rt, ctx } = replay(
      second.module.getFFI(),
      second.memory,
      template,
      build(second.module, SETUP),
    )
    expect(ctx.dump(ctx.unwrapResult(ctx.evalCode('greet("replay") + " " + kept.length')))).toBe(
      'hello replay 1000',
    )
    const churn =
      'let a = []; for (let i = 0; i < 20000; i++) a.push({ i, s: "x" + i }); a = null; kept.reduce((s, n) => s + n, 0)'
    expect(ctx.dump(ctx.unwrapResult(ctx.evalCode(churn)))).toBe(499500)
    ctx.dispose()
    rt.dispose()

    // The original is untouched by the replay into another memory.
    expect(
      original.ctx.dump(original.ctx.unwrapResult(original.ctx.evalCode('greet("template")'))),
    ).toBe('hello template')
    original.ctx.dispose()
    original.rt.dispose()
  })

  it('refuses a build that makes other FFI calls than the recording, or fewer', async () => {
    const first = await freshModule()
    const { template } = record(first.module.getFFI(), first.memory, build(first.module, SETUP))

    const other = await freshModule()
    const differentOrder = () => [other.module.newRuntime(), other.module.newRuntime()]
    expect(() => replay(other.module.getFFI(), other.memory, template, differentOrder)).toThrow(
      TemplateMismatch,
    )
    expect(() => replay(other.module.getFFI(), other.memory, template, differentOrder)).toThrow(
      'call 1 of the build was QTS_NewRuntime where the template recorded QTS_NewContext',
    )

    const another = await freshModule()
    const fewer = () => another.module.newRuntime()
    expect(() => replay(another.module.getFFI(), another.memory, template, fewer)).toThrow(
      'the build made 1 of the 5 FFI calls the template recorded',
    )
  })

  it('refuses a build whose calls carry other arguments: another source text, another setting', async () => {
    const first = await freshModule()
    const { template } = record(first.module.getFFI(), first.memory, build(first.module, SETUP))

    // Same length, other text: the buffer handed to QTS_Eval is compared byte for byte.
    const other = await freshModule()
    const sameLength = SETUP.replace('hello', 'HELLO')
    expect(sameLength.length).toBe(SETUP.length)
    expect(() =>
      replay(other.module.getFFI(), other.memory, template, build(other.module, sameLength)),
    ).toThrow("call 2 of the build (QTS_Eval) had other arguments than the template's")

    const withStack = (module: QuickJSWASMModule, bytes: number) => () => {
      const rt = module.newRuntime()
      rt.setMaxStackSize(bytes)
      return rt
    }
    const third = await freshModule()
    const stackTemplate = record(
      third.module.getFFI(),
      third.memory,
      withStack(third.module, 1 << 20),
    ).template
    const another = await freshModule()
    expect(() =>
      replay(
        another.module.getFFI(),
        another.memory,
        stackTemplate,
        withStack(another.module, 12345),
      ),
    ).toThrow(
      "call 1 of the build (QTS_RuntimeSetMaxStackSize) had other arguments than the template's",
    )
  })

  it('puts the real FFI functions back after a replay, even one that failed', async () => {
    const first = await freshModule()
    const ffi = first.module.getFFI() as unknown as Record<string, unknown>
    const before = { ...ffi }
    const { template } = record(first.module.getFFI(), first.memory, build(first.module, SETUP))
    expect({ ...ffi }).toEqual(before)

    const other = await freshModule()
    const otherFfi = other.module.getFFI() as unknown as Record<string, unknown>
    const otherBefore = { ...otherFfi }
    expect(() =>
      replay(other.module.getFFI(), other.memory, template, () => {
        throw new Error('build failed')
      }),
    ).toThrow('build failed')
    expect({ ...otherFfi }).toEqual(otherBefore)
  })
})
