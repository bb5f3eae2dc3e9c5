/**
 * Zero checks over linear memory, with a native compare instead of a byte loop: the scrub and
 * the template ask "is this range still zero?".
 *
 * @module
 */

/** The longest range one call may ask about. */
export const ZERO_CHECK_MAX_BYTES = 64 * 1024
const ZEROES = Buffer.alloc(ZERO_CHECK_MAX_BYTES)

/** Whether bytes `[start, end)` of `view` are all zero; `end - start` ≤ {@link ZERO_CHECK_MAX_BYTES}. */
export function isZero(view: Buffer, start: number, end: number): boolean {
  return view.compare(ZEROES, 0, end - start, start, end) === 0
}

/** A Buffer over the same bytes as `memory` (no copy). */
export function bufferOf(memory: Uint8Array | ArrayBuffer): Buffer {
  return memory instanceof ArrayBuffer
    ? Buffer.from(memory)
    : Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength)
}
