/**
 * Test helper: the `sluice` CLI in this process (no build needed), with what it writes to stdout
 * and stderr captured. One command at a time: the capture replaces the process's writers.
 */
import { main } from '../../src/cli/index.js'

export interface CliOutcome {
  code: number
  stdout: string
  stderr: string
}

export async function runCli(args: string[]): Promise<CliOutcome> {
  let stdout = ''
  let stderr = ''
  const out = process.stdout.write.bind(process.stdout)
  const err = process.stderr.write.bind(process.stderr)
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk)
    return true
  }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk)
    return true
  }) as typeof process.stderr.write
  try {
    const code = await main(args)
    return { code, stdout, stderr }
  } finally {
    process.stdout.write = out
    process.stderr.write = err
  }
}
