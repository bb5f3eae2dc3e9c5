/**
 * Reading and patching WebAssembly binaries: the shared ground of the rewrites the sandbox
 * applies to the QuickJS module before compiling it (fuel.ts, and the memory minimum below).
 *
 * @module
 */

/** The module could not be rewritten (an instruction or shape the decoder does not know). */
export class WasmRewriteError extends Error {
  override readonly name = 'WasmRewriteError'
}

export const SECTION = { custom: 0, type: 1, import: 2, function: 3, global: 6, code: 10 } as const

export class Reader {
  readonly bytes: Uint8Array
  offset: number
  constructor(bytes: Uint8Array, offset = 0) {
    this.bytes = bytes
    this.offset = offset
  }

  byte(): number {
    const b = this.bytes[this.offset++]
    if (b === undefined) throw new WasmRewriteError('unexpected end of the module')
    return b
  }

  u32(): number {
    let result = 0
    let shift = 0
    for (;;) {
      const b = this.byte()
      result += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return result
      shift += 7
      if (shift > 35) throw new WasmRewriteError('a LEB128 number is too long')
    }
  }

  /** Skips one LEB128 number, signed or not, of any width. */
  skipLeb(): void {
    while ((this.byte() & 0x80) !== 0);
  }

  skip(n: number): void {
    this.offset += n
    if (this.offset > this.bytes.length) throw new WasmRewriteError('unexpected end of the module')
  }

  name(): string {
    const length = this.u32()
    const start = this.offset
    this.skip(length)
    return new TextDecoder().decode(this.bytes.subarray(start, this.offset))
  }
}

export function leb(value: number): number[] {
  const out: number[] = []
  let v = value
  do {
    let b = v % 128
    v = Math.floor(v / 128)
    if (v !== 0) b |= 0x80
    out.push(b)
  } while (v !== 0)
  return out
}

export function sleb(value: number): number[] {
  const out: number[] = []
  let v = value
  for (;;) {
    const b = v & 0x7f
    v >>= 7
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b)
      return out
    }
    out.push(b | 0x80)
  }
}

export interface Section {
  id: number
  /** Start of the contents (after id and size). */
  start: number
  end: number
}

export function sections(bytes: Uint8Array): Section[] {
  const magic = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
  if (!magic.every((b, i) => bytes[i] === b))
    throw new WasmRewriteError('not a WebAssembly 1.0 module')
  const r = new Reader(bytes, 8)
  const out: Section[] = []
  while (r.offset < bytes.length) {
    const id = r.byte()
    const size = r.u32()
    out.push({ id, start: r.offset, end: r.offset + size })
    r.skip(size)
  }
  return out
}

/** Where a module's imported memory declares its minimum size. */
interface MemoryImport {
  /** Offset and byte length of the LEB128 minimum (in 64 KiB pages). */
  minimumAt: number
  minimumBytes: number
  minimumPages: number
}

function findMemoryImport(bytes: Uint8Array): MemoryImport {
  const section = sections(bytes).find((s) => s.id === SECTION.import)
  const r = new Reader(bytes, section?.start ?? bytes.length)
  const count = section === undefined ? 0 : r.u32()
  for (let i = 0; i < count; i++) {
    r.name()
    r.name()
    const kind = r.byte()
    if (kind === 0) r.u32()
    else if (kind === 1 || kind === 2) {
      if (kind === 1) r.byte() // reference type
      const flags = r.byte()
      const minimumAt = r.offset
      const minimumPages = r.u32()
      if (kind === 2) return { minimumAt, minimumBytes: r.offset - minimumAt, minimumPages }
      if (flags & 0x01) r.u32()
    } else if (kind === 3) r.skip(2)
    else throw new WasmRewriteError(`import ${i} has unknown kind ${kind}`)
  }
  throw new WasmRewriteError('the module does not import its memory')
}

/**
 * A copy of `bytes` whose imported memory declares `pages` as its minimum, so that a smaller
 * memory can be handed to it. The number is rewritten in place as a padded LEB128 of the same
 * width, so no offset in the module moves.
 *
 * Why: emscripten declares the whole initial heap (16 MiB for QuickJS) as the minimum, and the
 * sandbox zero-checks every byte of a memory before reusing it. A memory sized to what a built
 * instance really uses (it grows on demand, as the module allows) costs a third of that.
 */
export function withMemoryMinimum(bytes: Uint8Array, pages: number): Uint8Array {
  const found = findMemoryImport(bytes)
  if (!Number.isInteger(pages) || pages < 1 || pages >= 2 ** (7 * found.minimumBytes)) {
    throw new WasmRewriteError(
      `a memory minimum of ${pages} pages does not fit the ${found.minimumBytes} bytes the module gives it`,
    )
  }
  // A copy, never a view: `bytes` is often a Buffer, whose slice() shares memory.
  const out = new Uint8Array(bytes)
  let v = pages
  for (let i = 0; i < found.minimumBytes; i++) {
    const last = i === found.minimumBytes - 1
    out[found.minimumAt + i] = (v & 0x7f) | (last ? 0 : 0x80)
    v >>>= 7
  }
  return out
}

/** The minimum, in 64 KiB pages, that the module's imported memory declares. */
export function memoryMinimum(bytes: Uint8Array): number {
  return findMemoryImport(bytes).minimumPages
}
