/**
 * `sluice run [--config FILE] FILE|-`: run code once against the configured tools and print the
 * execution result as JSON. Exit 0 if ok, 1 if the code failed, 2 on usage or config error.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { loadConfig } from '../config/index.js'
import { usage, type Command } from './index.js'
import { stderrLog } from './log.js'
import { startUpstreams } from './upstreams.js'

async function readSource(path: string): Promise<string> {
  if (path === '-') {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }
  try {
    return await readFile(path, 'utf8')
  } catch {
    throw usage(`cannot read ${path}`)
  }
}

export const runCommand: Command = {
  name: 'run',
  summary: 'Run TypeScript once against the configured tools and print the result as JSON',
  usage: 'sluice run [--config FILE] FILE|-',
  description:
    'Runs one script in a fresh sandbox with the tools of the config (every configured tool when the config has no policies), as identity.local. Prints { ok, result, logs, calls, error? } on stdout. Exit 0 if ok, 1 if the code failed, 2 on a usage or config error. Without --config: no servers, default limits.',
  examples: [
    "echo 'return 6 * 7' | sluice run -",
    'sluice run --config examples/demo/sluice.yaml --pretty examples/scripts/memory.ts',
  ],
  options: {
    config: { type: 'string', short: 'c' },
    pretty: { type: 'boolean' },
  },
  async run({ values, positionals }) {
    if (positionals.length !== 1) throw usage('expected exactly one FILE (or - for standard input)')
    const config = loadConfig(values.config as string | undefined)
    const code = await readSource(positionals[0]!)
    // The servers boot while the engine and the sandbox load (as in `sluice serve`).
    const upstreams = startUpstreams(config, stderrLog)
    const [{ localPrincipal }, { runtime, telemetry }] = await upstreams.closeOnFailure(
      async () => {
        const [auth, { startRuntime }] = await Promise.all([
          import('../auth/index.js'),
          import('./compose.js'),
        ])
        return [
          auth,
          await startRuntime(config, { allowAllWithoutPolicies: true, upstreams }),
        ] as const
      },
    )
    try {
      const principal = localPrincipal(config.identity?.local)
      const result = await runtime.engine.execute(principal, code)
      process.stdout.write(`${JSON.stringify(result, null, values.pretty ? 2 : undefined)}\n`)
      return result.ok ? 0 : 1
    } finally {
      await runtime.close()
      // Flushes the spans of this one execution before the process exits.
      await telemetry.shutdown().catch(() => undefined)
    }
  },
}
