/**
 * `sluice` command line: parses arguments, dispatches to a command, maps errors to exit codes.
 * Exit codes: 0 success, 1 the work failed (code failed, a check found a problem), 2 usage or
 * config error.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { SluiceError, isSluiceError } from '../errors.js'

export interface Command {
  name: string
  summary: string
  usage: string
  options: NonNullable<ParseArgsConfig['options']>
  run(args: { values: Record<string, unknown>; positionals: string[] }): Promise<number>
}

const commands = new Map<string, () => Promise<Command>>([
  ['run', async () => (await import('./run.js')).runCommand],
  ['serve', async () => (await import('./serve.js')).serveCommand],
  ['stdio', async () => (await import('./serve.js')).stdioCommand],
  ['lock', async () => (await import('./lock.js')).lockCommand],
  ['bindings', async () => (await import('./lock.js')).bindingsCommand],
  ['policy', async () => (await import('./policy.js')).policyCommand],
  ['audit', async () => (await import('./audit.js')).auditCommand],
  ['token', async () => (await import('./token.js')).tokenCommand],
  ['evidence', async () => (await import('./evidence.js')).evidenceCommand],
  ['config', async () => (await import('./config.js')).configCommand],
])

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const

function topHelp(list: Command[]): string {
  const width = Math.max(...list.map((c) => c.name.length))
  return [
    'sluice: a WebAssembly-sandboxed code-mode gateway for MCP',
    '',
    'Usage: sluice <command> [options]',
    '',
    'Commands:',
    ...list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `sluice <command> --help` for the options of one command.',
  ].join('\n')
}

function commandHelp(command: Command): string {
  const lines = [command.summary, '', `Usage: ${command.usage}`, '', 'Options:']
  for (const [name, opt] of Object.entries(command.options)) {
    const short = 'short' in opt && opt.short ? `-${opt.short}, ` : '    '
    const value = opt.type === 'string' ? ' <value>' : ''
    const def =
      'default' in opt && opt.default !== undefined ? ` (default: ${String(opt.default)})` : ''
    lines.push(`  ${short}--${name}${value}${def}`)
  }
  lines.push('  -h, --help')
  return lines.join('\n')
}

/** Runs the CLI and returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const list = await Promise.all([...commands.values()].map((load) => load()))
    process.stdout.write(`${topHelp(list)}\n`)
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-v') {
    const { createRequire } = await import('node:module')
    const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string }
    process.stdout.write(`${pkg.version}\n`)
    return 0
  }
  const load = commands.get(name)
  if (!load) {
    process.stderr.write(`sluice: unknown command "${name}". Run \`sluice --help\` for the list.\n`)
    return 2
  }
  const command = await load()
  let parsed: { values: Record<string, unknown>; positionals: string[] }
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...command.options, ...HELP_OPTION },
      allowPositionals: true,
      strict: true,
    }) as { values: Record<string, unknown>; positionals: string[] }
  } catch (cause) {
    process.stderr.write(`sluice ${name}: ${(cause as Error).message}\n\n${commandHelp(command)}\n`)
    return 2
  }
  if (parsed.values.help) {
    process.stdout.write(`${commandHelp(command)}\n`)
    return 0
  }
  try {
    return await command.run(parsed)
  } catch (cause) {
    if (isSluiceError(cause)) {
      process.stderr.write(`sluice ${name}: ${cause.code}: ${cause.message}\n`)
      return cause.code === 'USAGE' || OPERATOR_EXIT_2.has(cause.code) ? 2 : 1
    }
    process.stderr.write(
      `sluice ${name}: unexpected error: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}\n`,
    )
    return 1
  }
}

const OPERATOR_EXIT_2: ReadonlySet<string> = new Set([
  'CONFIG_INVALID',
  'POLICY_INVALID',
  'LOCK_INVALID',
  'SIGNATURE_INVALID',
  'BINDINGS_INVALID',
])

/** A usage error: exit code 2 with the message. */
export function usage(message: string): SluiceError {
  return new SluiceError('USAGE', message)
}
