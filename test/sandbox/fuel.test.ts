/**
 * The fuel rewrite (src/sandbox/fuel.ts): on a hand-assembled module it counts loop iterations
 * and calls exactly, and stops a loop that never ends; on the shipped QuickJS module it finds
 * every site and the interpreter loop; anything it does not understand is refused.
 */
import { describe, expect, it } from 'vitest'
import { addFuel } from '../../src/sandbox/fuel.js'
import { WasmRewriteError } from '../../src/sandbox/wasm-binary.js'
import { fuelled, quickjsWasmBytes } from '../../src/sandbox/quickjs-module.js'

const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      validate(bytes: Uint8Array): boolean
      Module: new (bytes: Uint8Array) => object
      Instance: new (
        module: object,
        imports: object,
      ) => { exports: Record<string, (...a: number[]) => number> }
    }
  }
).WebAssembly

const CLOCK = { module: 'a', name: 'p' }

function section(id: number, body: number[]): number[] {
  return [id, body.length, ...body]
}

function name(text: string): number[] {
  return [text.length, ...[...text].map((c) => c.charCodeAt(0))]
}

/**
 * (import "a" "p" (func (result f64)))
 * (func $spin (param $n i32) (result i32)        ;; loops n times, returns n
 *   (local $i i32)
 *   (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
 *            (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
 *   (local.get $i))
 * (func $calls (param $n i32) (result i32)       ;; calls $leaf n times (in a loop)
 * (func $leaf)
 * exported as "spin", "calls"
 */
function tinyModule(): Uint8Array {
  const types = section(1, [3, 0x60, 0, 1, 0x7c, 0x60, 1, 0x7f, 1, 0x7f, 0x60, 0, 0])
  const imports = section(2, [1, ...name('a'), ...name('p'), 0x00, 0])
  const functions = section(3, [3, 1, 1, 2])
  const exports = section(7, [2, ...name('spin'), 0x00, 1, ...name('calls'), 0x00, 2])
  const spin = [
    1, 1, 0x7f, 0x03, 0x40, 0x20, 1, 0x41, 1, 0x6a, 0x21, 1, 0x20, 1, 0x20, 0, 0x49, 0x0d, 0, 0x0b,
    0x20, 1, 0x0b,
  ]
  const calls = [
    1, 1, 0x7f, 0x03, 0x40, 0x10, 3, 0x20, 1, 0x41, 1, 0x6a, 0x21, 1, 0x20, 1, 0x20, 0, 0x49, 0x0d,
    0, 0x0b, 0x20, 1, 0x0b,
  ]
  const leaf = [0, 0x0b]
  const code = section(10, [3, spin.length, ...spin, calls.length, ...calls, leaf.length, ...leaf])
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...types,
    ...imports,
    ...functions,
    ...exports,
    ...code,
  ])
}

function instantiate(bytes: Uint8Array, clock: () => number) {
  return new wasm.Instance(new wasm.Module(bytes), { a: { p: clock } }).exports
}

describe('fuel on a hand-assembled module', () => {
  it('is valid, and the original still runs without it', () => {
    const original = tinyModule()
    expect(wasm.validate(original)).toBe(true)
    const { bytes, sites } = addFuel(original, { clock: CLOCK, stepsPerCheck: 10 })
    expect(wasm.validate(bytes)).toBe(true)
    // Three function entries and two loop headers.
    expect(sites).toBe(5)
    expect(instantiate(original, () => 0).spin!(1000)).toBe(1000)
  })

  it('asks the clock once every stepsPerCheck loop iterations and calls, and not before', () => {
    const { bytes } = addFuel(tinyModule(), { clock: CLOCK, stepsPerCheck: 10 })
    let asked = 0
    const exports = instantiate(bytes, () => {
      asked++
      return 0
    })
    // One entry of spin and 9 iterations: 10 steps, the budget is not yet exhausted.
    expect(exports.spin!(9)).toBe(9)
    expect(asked).toBe(0)
    // 1 more entry + 1000 iterations = 1001 steps from an empty counter: refills at steps 1,
    // 11, …, 1001.
    expect(exports.spin!(1000)).toBe(1000)
    expect(asked).toBe(101)
    // calls: each iteration enters $leaf too (2 steps per iteration).
    asked = 0
    expect(exports.calls!(500)).toBe(500)
    expect(asked).toBe(100)
  })

  it('a loop that never ends stops where the clock throws, and the instance can be dropped', () => {
    const { bytes } = addFuel(tinyModule(), { clock: CLOCK, stepsPerCheck: 1000 })
    let asked = 0
    const stop = new Error('deadline')
    const exports = instantiate(bytes, () => {
      if (++asked === 50) throw stop
      return 0
    })
    expect(() => exports.spin!(0xffffffff)).toThrow(stop)
    expect(asked).toBe(50)
  })
})

describe('fuel on the shipped QuickJS module', () => {
  it('counts every function entry and loop header but the interpreter loop', () => {
    const raw = quickjsWasmBytes()
    const all = addFuel(raw, { clock: CLOCK, stepsPerCheck: 10_000 })
    const product = fuelled(raw)
    expect(all.skippedInterpreterLoop).toBe(false)
    expect(product.skippedInterpreterLoop).toBe(true)
    expect(product.sites).toBe(all.sites - 1)
    expect(all.sites).toBeGreaterThan(2000)
    expect(wasm.validate(product.bytes)).toBe(true)
  })
})

describe('what the rewrite refuses', () => {
  it('something that is not a WebAssembly module', () => {
    expect(() =>
      addFuel(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), { clock: CLOCK, stepsPerCheck: 1 }),
    ).toThrow(new WasmRewriteError('not a WebAssembly 1.0 module'))
  })

  it('a module without the clock import, or with a clock of another type', () => {
    expect(() =>
      addFuel(tinyModule(), { clock: { module: 'a', name: 'q' }, stepsPerCheck: 1 }),
    ).toThrow(new WasmRewriteError('the module does not import a.q'))
    const wrongType = tinyModule()
    // The import's type index 0 → 1 (i32 → i32).
    const at = wrongType.indexOf(0x70) + 2
    expect(wrongType[at - 2]).toBe(0x70) // 'p'
    wrongType[at] = 1
    expect(() => addFuel(wrongType, { clock: CLOCK, stepsPerCheck: 1 })).toThrow(
      new WasmRewriteError('a.p is not a clock: () → f64 expected'),
    )
  })

  it('an instruction it does not know (SIMD), naming its byte', () => {
    const bytes = tinyModule()
    // spin's first instruction after its locals (1 × i32) is `loop`: make it a SIMD prefix.
    const body = Buffer.from(bytes).indexOf(Buffer.from([1, 1, 0x7f, 0x03, 0x40]))
    const loop = body + 3
    bytes[loop] = 0xfd
    expect(() => addFuel(bytes, { clock: CLOCK, stepsPerCheck: 1 })).toThrow(
      new WasmRewriteError(`instruction 0xfd at byte ${loop} is not supported`),
    )
  })

  it('a stepsPerCheck outside 1 … 2^30', () => {
    for (const steps of [0, 1.5, 2 ** 30 + 1]) {
      expect(() => addFuel(tinyModule(), { clock: CLOCK, stepsPerCheck: steps })).toThrow(
        new WasmRewriteError(`stepsPerCheck must be an integer from 1 to 2^30, not ${steps}`),
      )
    }
  })
})
