/**
 * `sluice audit verify FILE...|FOLDER`: checks the hash chain (and signed checkpoints) of audit
 * files; a folder is every chain in it (the configured file's and each segment beside it).
 *
 * @module
 */
import { readFile, stat } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import {
  discoverChains,
  verifyAuditChain,
  type VerifyOptions,
  type VerifyReport,
} from '../audit/index.js'
import { usage, type Command } from './index.js'

/** The chains named by the arguments: files as one chain in the given order, or one folder. */
async function chainsOf(
  paths: readonly string[],
): Promise<{ chains: string[][]; folder: boolean }> {
  const kinds = await Promise.all(
    paths.map(async (p) => {
      try {
        return (await stat(p)).isDirectory() ? 'folder' : 'file'
      } catch {
        throw usage(`no such file: ${p}`)
      }
    }),
  )
  if (!kinds.includes('folder')) return { chains: [[...paths]], folder: false }
  if (paths.length > 1)
    throw usage('audit verify: give one folder, or files of one chain (oldest first)')
  const chains = await discoverChains(paths[0]!)
  if (chains.length === 0) throw usage(`${paths[0]} holds no audit file`)
  return { chains, folder: true }
}

/** The `--public-key` JWK; a missing or unreadable file is a usage error, not a crash. */
async function readPublicKey(path: string): Promise<object> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT'
    throw usage(missing ? `no such file: ${path}` : `--public-key: cannot read ${path}`)
  }
  try {
    const jwk: unknown = JSON.parse(text)
    if (jwk !== null && typeof jwk === 'object' && !Array.isArray(jwk)) return jwk
  } catch {
    // Reported below, with what was expected.
  }
  throw usage(`--public-key: ${path} is not a JSON JWK (expected an object such as {"kty":"EC",…})`)
}

function describe(report: VerifyReport): string {
  if (report.ok) {
    return `ok: ${report.records} records, last seq ${report.lastSeq}, head ${report.headHash}`
  }
  const e = report.error
  return `TAMPERED: ${e ? `${e.file ?? ''}${e.line > 0 ? ` line ${e.line}` : ''}${e.seq !== undefined ? ` (seq ${e.seq})` : ''}: ${e.reason}` : 'verification failed'}`
}

export const auditCommand: Command = {
  name: 'audit',
  summary:
    'Verify audit files: any edit, deletion, reordering or truncation is reported with its place',
  usage:
    'sluice audit verify FILE...|FOLDER [--public-key JWK_FILE] [--checkpoint-every N] [--expect SEQ:HASH] [--json]\n' +
    '  FILE...             rotated files oldest first, the live file last (audit.jsonl.1 audit.jsonl.2 audit.jsonl)\n' +
    '  FOLDER              every chain in it: the configured file and each segment another process wrote beside it\n' +
    '  --public-key        check checkpoint signatures with this public JWK\n' +
    '  --checkpoint-every  require a checkpoint at least every N records (as the writer promised)\n' +
    '  --expect SEQ:HASH   a record known from elsewhere (e.g. a checkpoint copied to WORM storage) must be present:\n' +
    '                      reveals a truncated tail, which a hash chain alone cannot',
  description:
    'Checks the hash chain of audit files, and their signed checkpoints with --public-key. Exit 0 when every chain is intact, 1 when one is not (the output names file, line and seq), 2 when a path does not exist.',
  examples: [
    'sluice audit verify examples/demo/.data/audit.jsonl',
    'sluice audit verify /var/log/sluice --public-key keys/audit.pub.jwk.json --json',
  ],
  options: {
    'public-key': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    expect: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals }) {
    const [sub, ...files] = positionals
    if (sub !== 'verify' || files.length === 0) throw usage('expected `audit verify FILE...`')
    const keyFile = values['public-key'] as string | undefined
    const publicKey = keyFile === undefined ? undefined : await readPublicKey(resolve(keyFile))
    const options: VerifyOptions = publicKey ? { publicKey } : {}
    const every = values['checkpoint-every'] as string | undefined
    if (every !== undefined) {
      if (!/^[1-9][0-9]*$/.test(every))
        throw usage(`--checkpoint-every: expected a positive integer, got ${every}`)
      options.checkpointEvery = Number(every)
    }
    const expected = values.expect as string | undefined
    if (expected !== undefined) {
      const m = /^([1-9][0-9]*):(sha256:[0-9a-f]{64})$/.exec(expected)
      if (!m) throw usage(`--expect: expected SEQ:sha256:<64 hex>, got ${expected}`)
      options.expectRecord = { seq: Number(m[1]), hash: m[2]! }
    }
    const { chains, folder } = await chainsOf(files.map((f) => resolve(f)))
    const reports = await Promise.all(chains.map((chain) => verifyAuditChain(chain, options)))
    if (values.json) {
      const out = folder
        ? { chains: reports.map((r, i) => ({ file: chains[i]!.at(-1), ...r })) }
        : reports[0]
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
    } else if (!folder) {
      process.stdout.write(`${describe(reports[0]!)}\n`)
    } else {
      for (const [i, report] of reports.entries())
        process.stdout.write(`${basename(chains[i]!.at(-1)!)}: ${describe(report)}\n`)
    }
    // Warnings go to stderr so that stdout stays one line per chain.
    for (const report of reports)
      for (const warning of report.ok ? report.warnings : [])
        process.stderr.write(`sluice audit: warning: ${warning}\n`)
    const ok = reports.every((r) => r.ok)
    return ok ? 0 : 1
  },
}
