/**
 * Fuel: a rewrite of the QuickJS WebAssembly module that bounds how long any of its C code can
 * run without the host being asked.
 *
 * QuickJS checks its interrupt handler only in the bytecode interpreter. Builtins written in C
 * loop without it (`Array(2**32-1).join("")`, `lastIndexOf` over a huge array-like, the
 * allocator thrashing near the memory limit), and only the worker-killing watchdog could stop
 * them. This rewrite makes the limit structural instead: every function entry and every loop
 * header of the module decrements a counter (a new mutable global), and when it reaches zero a
 * new function refills it and calls the module's clock import. The host's clock import throws
 * once the execution's deadline has passed, which unwinds the WebAssembly stack back to the host
 * call that entered it, in that execution's own instance, so the worker and every other
 * execution carry on.
 *
 * Between two checks the module runs at most `stepsPerCheck` loop iterations or calls, each a
 * bounded stretch of straight-line code: no path through the module can run longer than that
 * without reaching the clock. Only indices are appended (a global, a function and, when needed,
 * a type), so nothing that exists is renumbered; the new code is stack-neutral, so it can sit at
 * any instruction boundary.
 *
 * The decoder knows the instruction set the shipped module uses (MVP, sign extension, bulk
 * memory, saturating truncation, reference types). Anything else throws {@link WasmRewriteError}: a
 * module this rewrite does not understand is refused, never run unbounded.
 *
 * @module
 */

import {
  leb,
  Reader,
  SECTION,
  sections,
  sleb,
  WasmRewriteError,
  type Section,
} from './wasm-binary.js'

export interface FuelOptions {
  /** The function import the refill calls; it takes no arguments and returns an f64 (a clock). */
  clock: { module: string; name: string }
  /** Loop iterations plus function entries between two calls of the clock. */
  stepsPerCheck: number
  /**
   * Leave the bytecode interpreter's dispatch loop uncounted: the loop around the module's one
   * `br_table` of at least {@link INTERPRETER_TARGETS} targets (QuickJS's `JS_CallInternal`).
   * QuickJS itself polls the interrupt handler at every bytecode jump, and calls still count at
   * `JS_CallInternal`'s entry, so bytecode cannot run unbounded there; counting each dispatch
   * as well cost up to 1.7× on tight JavaScript loops. Every other loop still counts.
   */
  skipInterpreterLoop?: boolean
}

/** A `br_table` this large can only be the interpreter's opcode switch (QuickJS has ≈250 opcodes). */
export const INTERPRETER_TARGETS = 200

export interface FuelResult {
  bytes: Uint8Array
  /** Function entries and loop headers that now count fuel. */
  sites: number
  /** Whether the interpreter's dispatch loop was found and left uncounted. */
  skippedInterpreterLoop: boolean
}

const I32 = 0x7f
const F64 = 0x7c

interface FuncType {
  params: number[]
  results: number[]
}

function readTypes(bytes: Uint8Array, section: Section): FuncType[] {
  const r = new Reader(bytes, section.start)
  const count = r.u32()
  const types: FuncType[] = []
  for (let i = 0; i < count; i++) {
    if (r.byte() !== 0x60) throw new WasmRewriteError(`type ${i} is not a function type`)
    const params = Array.from({ length: r.u32() }, () => r.byte())
    const results = Array.from({ length: r.u32() }, () => r.byte())
    types.push({ params, results })
  }
  return types
}

interface Imports {
  functions: number
  globals: number
  /** Function index of the clock import, and its type index. */
  clock?: { index: number; type: number }
}

function readImports(
  bytes: Uint8Array,
  section: Section | undefined,
  clock: FuelOptions['clock'],
): Imports {
  const imports: Imports = { functions: 0, globals: 0 }
  if (section === undefined) return imports
  const r = new Reader(bytes, section.start)
  const count = r.u32()
  for (let i = 0; i < count; i++) {
    const module = r.name()
    const name = r.name()
    const kind = r.byte()
    if (kind === 0) {
      const type = r.u32()
      if (module === clock.module && name === clock.name)
        imports.clock = { index: imports.functions, type }
      imports.functions++
    } else if (kind === 1) {
      r.byte() // reference type
      skipLimits(r)
    } else if (kind === 2) {
      skipLimits(r)
    } else if (kind === 3) {
      r.byte() // value type
      r.byte() // mutability
      imports.globals++
    } else {
      throw new WasmRewriteError(`import ${module}.${name} has unknown kind ${kind}`)
    }
  }
  return imports
}

function skipLimits(r: Reader): void {
  const flags = r.byte()
  r.u32()
  if (flags & 0x01) r.u32()
}

function vectorCount(bytes: Uint8Array, section: Section | undefined): number {
  return section === undefined ? 0 : new Reader(bytes, section.start).u32()
}

/** Appends `entry` to the vector that fills a section, returning the new contents. */
function appendToVector(
  bytes: Uint8Array,
  section: Section | undefined,
  entry: number[],
): number[] {
  if (section === undefined) return [...leb(1), ...entry]
  const r = new Reader(bytes, section.start)
  const count = r.u32()
  return [...leb(count + 1), ...bytes.subarray(r.offset, section.end), ...entry]
}

interface BodySites {
  /** Offsets (into the module) after which a fuel check goes. */
  sites: number[]
  /** The body's largest `br_table`: its target count and the loop header that encloses it. */
  widest?: { targets: number; loopSite: number | undefined }
}

/**
 * Walks one function body and returns the offsets after which the fuel check goes: after the
 * local declarations, and after every `loop` and its block type.
 */
function checkSites(bytes: Uint8Array, start: number, end: number): BodySites {
  const r = new Reader(bytes, start)
  const locals = r.u32()
  for (let i = 0; i < locals; i++) {
    r.u32()
    r.byte()
  }
  const sites = [r.offset]
  // Open blocks: a loop's header offset, or undefined for block, if and try.
  const open: (number | undefined)[] = []
  let widest: BodySites['widest']
  while (r.offset < end) {
    const op = r.byte()
    if (op === 0x03) {
      r.skipLeb()
      sites.push(r.offset)
      open.push(r.offset)
    } else if (op === 0x02 || op === 0x04 || op === 0x06) {
      r.skipLeb()
      open.push(undefined)
    } else if (op === 0x0b) {
      open.pop()
    } else if (op === 0x0e) {
      const targets = r.u32()
      for (let i = 0; i <= targets; i++) r.skipLeb()
      if (widest === undefined || targets > widest.targets) {
        widest = { targets, loopSite: open.findLast((site) => site !== undefined) }
      }
    } else {
      skipImmediates(r, op)
    }
  }
  if (r.offset !== end) throw new WasmRewriteError('a function body ends inside an instruction')
  return widest === undefined ? { sites } : { sites, widest }
}

function skipImmediates(r: Reader, op: number): void {
  if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b) return
  if (op >= 0x45 && op <= 0xc4) return // numeric instructions: no immediates
  switch (op) {
    case 0x02: // block
    case 0x04: // if
    case 0x0c: // br
    case 0x0d: // br_if
    case 0x10: // call
    case 0x12: // return_call
    case 0x20: // local.get
    case 0x21: // local.set
    case 0x22: // local.tee
    case 0x23: // global.get
    case 0x24: // global.set
    case 0x25: // table.get
    case 0x26: // table.set
    case 0x3f: // memory.size
    case 0x40: // memory.grow
    case 0x41: // i32.const
    case 0x42: // i64.const
    case 0xd0: // ref.null
    case 0xd2: // ref.func
      r.skipLeb()
      return
    case 0x11: // call_indirect
    case 0x13: // return_call_indirect
      r.skipLeb()
      r.skipLeb()
      return
    case 0x1c: {
      // select with types
      const types = r.u32()
      r.skip(types)
      return
    }
    case 0x43: // f32.const
      r.skip(4)
      return
    case 0x44: // f64.const
      r.skip(8)
      return
    case 0xd1: // ref.is_null
      return
    case 0xfc:
      skipPrefixed(r)
      return
    default:
      break
  }
  if (op >= 0x28 && op <= 0x3e) {
    // loads and stores: alignment (bit 6 announces a memory index) and offset
    const align = r.u32()
    if (align & 0x40) r.skipLeb()
    r.skipLeb()
    return
  }
  throw new WasmRewriteError(
    `instruction 0x${op.toString(16)} at byte ${r.offset - 1} is not supported`,
  )
}

function skipPrefixed(r: Reader): void {
  const sub = r.u32()
  if (sub <= 7) return // saturating truncation
  switch (sub) {
    case 8: // memory.init
    case 10: // memory.copy
    case 12: // table.init
    case 14: // table.copy
      r.skipLeb()
      r.skipLeb()
      return
    case 9: // data.drop
    case 11: // memory.fill
    case 13: // elem.drop
    case 15: // table.grow
    case 16: // table.size
    case 17: // table.fill
      r.skipLeb()
      return
    default:
      throw new WasmRewriteError(`instruction 0xfc ${sub} at byte ${r.offset} is not supported`)
  }
}

/** Rewrites `bytes` so that every function entry and loop header counts fuel. */
export function addFuel(bytes: Uint8Array, options: FuelOptions): FuelResult {
  if (
    !Number.isInteger(options.stepsPerCheck) ||
    options.stepsPerCheck < 1 ||
    options.stepsPerCheck > 2 ** 30
  ) {
    throw new WasmRewriteError(
      `stepsPerCheck must be an integer from 1 to 2^30, not ${options.stepsPerCheck}`,
    )
  }
  const all = sections(bytes)
  const find = (id: number) => all.find((s) => s.id === id)
  const typeSection = find(SECTION.type)
  const codeSection = find(SECTION.code)
  const functionSection = find(SECTION.function)
  if (typeSection === undefined || codeSection === undefined || functionSection === undefined) {
    throw new WasmRewriteError('the module has no code')
  }
  const types = readTypes(bytes, typeSection)
  const imports = readImports(bytes, find(SECTION.import), options.clock)
  if (imports.clock === undefined) {
    throw new WasmRewriteError(
      `the module does not import ${options.clock.module}.${options.clock.name}`,
    )
  }
  const clockType = types[imports.clock.type]
  if (
    clockType === undefined ||
    clockType.params.length !== 0 ||
    clockType.results.join() !== String(F64)
  ) {
    throw new WasmRewriteError(
      `${options.clock.module}.${options.clock.name} is not a clock: () → f64 expected`,
    )
  }

  // New entries go at the end of each index space, so no existing index moves.
  let voidType = types.findIndex((t) => t.params.length === 0 && t.results.length === 0)
  const newTypes = voidType < 0 ? appendToVector(bytes, typeSection, [0x60, 0x00, 0x00]) : undefined
  if (voidType < 0) voidType = types.length
  const fuel = imports.globals + vectorCount(bytes, find(SECTION.global))
  const refill = imports.functions + vectorCount(bytes, functionSection)
  const newGlobals = appendToVector(bytes, find(SECTION.global), [
    I32,
    0x01,
    0x41,
    ...sleb(options.stepsPerCheck),
    0x0b,
  ])
  const newFunctions = appendToVector(bytes, functionSection, leb(voidType))

  // if (fuel == 0) refill(); fuel -= 1
  const check = [
    0x23,
    ...leb(fuel),
    0x45,
    0x04,
    0x40,
    0x10,
    ...leb(refill),
    0x0b,
    0x23,
    ...leb(fuel),
    0x41,
    0x01,
    0x6b,
    0x24,
    ...leb(fuel),
  ]
  // fuel = stepsPerCheck; drop(clock())
  const refillBody = [
    0x00,
    0x41,
    ...sleb(options.stepsPerCheck),
    0x24,
    ...leb(fuel),
    0x10,
    ...leb(imports.clock.index),
    0x1a,
    0x0b,
  ]

  const code = new Reader(bytes, codeSection.start)
  const bodies = code.u32()
  const walked: { start: number; end: number; at: BodySites }[] = []
  for (let i = 0; i < bodies; i++) {
    const size = code.u32()
    const start = code.offset
    code.skip(size)
    walked.push({ start, end: start + size, at: checkSites(bytes, start, start + size) })
  }
  const interpreterLoop = options.skipInterpreterLoop
    ? findInterpreterLoop(walked.map((w) => w.at))
    : undefined

  const parts: Uint8Array[] = [new Uint8Array(leb(bodies + 1))]
  const checkBytes = new Uint8Array(check)
  let sites = 0
  for (const { start, end, at: body } of walked) {
    const size = end - start
    const at = body.sites.filter((site) => site !== interpreterLoop)
    sites += at.length
    parts.push(new Uint8Array(leb(size + at.length * check.length)))
    let from = start
    for (const site of at) {
      parts.push(bytes.subarray(from, site), checkBytes)
      from = site
    }
    parts.push(bytes.subarray(from, end))
  }
  parts.push(new Uint8Array([...leb(refillBody.length), ...refillBody]))
  const newCode = concat(parts)

  const out: Uint8Array[] = [bytes.subarray(0, 8)]
  let globalsWritten = false
  const emit = (id: number, contents: ArrayLike<number>) => {
    out.push(
      new Uint8Array([id, ...leb(contents.length)]),
      contents instanceof Uint8Array ? contents : new Uint8Array(contents),
    )
  }
  for (const section of all) {
    // A module without a global section gets one right before the exports (the spec's order).
    if (
      !globalsWritten &&
      section.id !== SECTION.custom &&
      sectionOrder(section.id) > sectionOrder(SECTION.global)
    ) {
      emit(SECTION.global, newGlobals)
      globalsWritten = true
    }
    if (section.id === SECTION.type && newTypes !== undefined) emit(section.id, newTypes)
    else if (section.id === SECTION.function) emit(section.id, newFunctions)
    else if (section.id === SECTION.global) {
      emit(section.id, newGlobals)
      globalsWritten = true
    } else if (section.id === SECTION.code) emit(section.id, newCode)
    else emit(section.id, bytes.subarray(section.start, section.end))
  }
  return { bytes: concat(out), sites, skippedInterpreterLoop: interpreterLoop !== undefined }
}

/** The loop header around the module's widest `br_table`, when that is an opcode switch. */
function findInterpreterLoop(bodies: readonly BodySites[]): number | undefined {
  let best: BodySites['widest']
  for (const body of bodies) {
    if (body.widest !== undefined && (best === undefined || body.widest.targets > best.targets))
      best = body.widest
  }
  if (best === undefined || best.targets < INTERPRETER_TARGETS) return undefined
  return best.loopSite
}

/** Position of a section id in the order the spec requires (data count sits before code). */
function sectionOrder(id: number): number {
  const order = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11]
  const at = order.indexOf(id)
  return at < 0 ? -1 : at
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
