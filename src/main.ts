#!/usr/bin/env node
/**
 * The `sluice` executable.
 *
 * @module
 */
import { main } from './cli/index.js'

/**
 * Exits once stdout and stderr have handed everything to the OS. Exit explicitly (a stray handle,
 * an upstream child or a worker, must never keep a finished command alive), but not before: a
 * pipe whose reader is slower than the writer buffers in this process, and `process.exit` would
 * drop what is still queued.
 */
function exitAfterFlush(code: number): void {
  let pending = 2
  const done = (): void => {
    if (--pending === 0) process.exit(code)
  }
  for (const stream of [process.stdout, process.stderr]) {
    // A reader that went away (EPIPE) has nothing left to flush to.
    stream.on('error', done)
    stream.write('', done)
  }
}

main(process.argv.slice(2)).then(exitAfterFlush, (cause: unknown) => {
  process.stderr.write(`sluice: ${cause instanceof Error ? cause.message : String(cause)}\n`)
  exitAfterFlush(1)
})
