#!/usr/bin/env node
/**
 * The `sluice` executable.
 *
 * @module
 */
import { main } from './cli/index.js'

main(process.argv.slice(2)).then(
  // Exit explicitly: stdout is synchronous for files and pipes on Linux, and a stray handle
  // (an upstream child, a worker) must never keep a finished command alive.
  (code) => process.exit(code),
  (cause: unknown) => {
    process.stderr.write(`sluice: ${cause instanceof Error ? cause.message : String(cause)}\n`)
    process.exit(1)
  },
)
