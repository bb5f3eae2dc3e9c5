/**
 * A preload (`node --import`) for the gateway under the soak: every `SLUICE_PROBE_MS` [2000] ms,
 * each thread of the process (the main one and every sandbox worker, which inherit the flag)
 * appends one JSON line to `SLUICE_PROBE_FILE` with its own V8 heap: used and committed, old
 * and new space, external memory and array buffers. Bench-side on purpose: the gateway gains no
 * endpoint or option for it, and nothing runs unless the soak asks.
 *
 * @module
 */
import { appendFileSync } from 'node:fs'
import v8 from 'node:v8'
import { isMainThread, threadId } from 'node:worker_threads'

const file = process.env.SLUICE_PROBE_FILE
if (file !== undefined) {
  const MiB = 2 ** 20
  const round = (bytes) => Math.round((bytes / MiB) * 10) / 10
  const probe = () => {
    const heap = v8.getHeapStatistics()
    const spaces = Object.fromEntries(
      v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]),
    )
    const committed = Object.fromEntries(
      v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.physical_space_size]),
    )
    const { external, arrayBuffers } = process.memoryUsage()
    appendFileSync(
      file,
      `${JSON.stringify({
        at: Date.now(),
        thread: isMainThread ? 0 : threadId,
        usedMiB: round(heap.used_heap_size),
        totalMiB: round(heap.total_heap_size),
        oldUsedMiB: round(spaces.old_space ?? 0),
        oldMiB: round(committed.old_space ?? 0),
        newMiB: round(committed.new_space ?? 0),
        externalMiB: round(external),
        arrayBuffersMiB: round(arrayBuffers),
      })}\n`,
    )
  }
  setInterval(probe, Number(process.env.SLUICE_PROBE_MS ?? 2000)).unref()
}
