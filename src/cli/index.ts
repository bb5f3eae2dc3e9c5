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
  /** One line, for the list of `sluice --help`. */
  summary: string
  /** What it does, what it reads and writes, and its exit codes: the body of `--help`. */
  description: string
  /** Command lines a reader can copy (at least one). */
  examples: readonly string[]
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
  ['registry', async () => (await import('./registry.js')).registryCommand],
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
    'Run `sluice <command> --help` (or `sluice help <command>`) for what one command does, its',
    'options and examples. Exit codes: 0 success, 1 the work failed, 2 usage or config error.',
    '',
    'Example:',
    '  echo "return 6 * 7" | sluice run -',
  ].join('\n')
}

/** Wraps a paragraph at 98 columns, indented by two spaces. */
function wrap(text: string): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > 96) {
      lines.push(`  ${line}`)
      line = word
    } else line = line === '' ? word : `${line} ${word}`
  }
  if (line !== '') lines.push(`  ${line}`)
  return lines
}

function commandHelp(command: Command): string {
  const lines = [
    command.summary,
    '',
    `Usage: ${command.usage}`,
    '',
    'Description:',
    ...wrap(command.description),
    '',
    command.examples.length === 1 ? 'Example:' : 'Examples:',
    ...command.examples.map((e) => `  ${e}`),
    '',
    'Options:',
  ]
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
  // `sluice help run` is `sluice run --help`.
  const helpFor = name === 'help' && rest[0] !== undefined ? commands.get(rest[0]) : undefined
  if (helpFor !== undefined) {
    process.stdout.write(`${commandHelp(await helpFor())}\n`)
    return 0
  }
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
      // A usage error is the reader's own typing: its message says it all, the code adds nothing.
      const code = cause.code === 'USAGE' ? '' : `${cause.code}: `
      process.stderr.write(`sluice ${name}: ${code}${oneLine(cause.message)}\n`)
      return exitCodeOf(cause.code)
    }
    const missing = missingFile(cause)
    if (missing !== undefined) {
      process.stderr.write(`sluice ${name}: no such file: ${missing}\n`)
      return 2
    }
    process.stderr.write(
      `sluice ${name}: unexpected error: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}\n`,
    )
    return 1
  }
}

/**
 * A failure as one line. An MCP client that starts `sluice stdio`, a container runtime and a
 * systemd unit each show the last line of stderr; a start that failed must say why on it.
 * Loaders list problems as `header:` then `  - item` lines (config, policy, lock); code frames
 * under a CEL parse error repeat the line and column the item already names.
 */
export function oneLine(message: string): string {
  const groups: Array<{ head: string; items: string[] }> = []
  for (const raw of message.split('\n')) {
    const line = raw.trim()
    if (line === '' || /^>?\s*\d+\s*\|/.test(line) || /^\|/.test(line) || /^\^+$/.test(line))
      continue
    if (line.startsWith('- ') && groups.length > 0) groups.at(-1)!.items.push(line.slice(2))
    else groups.push({ head: line, items: [] })
  }
  return groups
    .map((g) => (g.items.length === 0 ? g.head : `${g.head} ${g.items.join('; ')}`))
    .join('; ')
}

/** The path of a file that does not exist, when that is what `cause` says (ENOENT). */
function missingFile(cause: unknown): string | undefined {
  const e = cause as NodeJS.ErrnoException | undefined
  return e instanceof Error && e.code === 'ENOENT' && typeof e.path === 'string'
    ? e.path
    : undefined
}

const OPERATOR_EXIT_2: ReadonlySet<string> = new Set([
  'CONFIG_INVALID',
  'POLICY_INVALID',
  'LOCK_INVALID',
  'SIGNATURE_INVALID',
  'BINDINGS_INVALID',
  'REGISTRY_INVALID',
  'REGISTRY_NOT_FOUND',
])

/**
 * The exit code of a failure: 2 for what the operator typed or wrote (usage, config, policy,
 * lock), 3 for a diff that could not be computed (1 means "changed" there), else 1.
 */
export function exitCodeOf(code: string): number {
  if (code === 'USAGE' || OPERATOR_EXIT_2.has(code)) return 2
  return code === 'DIFF_UNAVAILABLE' ? 3 : 1
}

/** A usage error: exit code 2 with the message. */
export function usage(message: string): SluiceError {
  return new SluiceError('USAGE', message)
}
