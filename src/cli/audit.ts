/**
 * `sluice audit verify FILE...`: checks the hash chain (and signed checkpoints) of audit files.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { verifyAuditChain, type VerifyOptions } from '../audit/index.js'
import { usage, type Command } from './index.js'

export const auditCommand: Command = {
  name: 'audit',
  summary:
    'Verify audit files: any edit, deletion, reordering or truncation is reported with its place',
  usage:
    'sluice audit verify FILE... [--public-key JWK_FILE] [--checkpoint-every N] [--expect SEQ:HASH] [--json]\n' +
    '  FILE...             rotated files oldest first, the live file last (audit.jsonl.1 audit.jsonl.2 audit.jsonl)\n' +
    '  --public-key        check checkpoint signatures with this public JWK\n' +
    '  --checkpoint-every  require a checkpoint at least every N records (as the writer promised)\n' +
    '  --expect SEQ:HASH   a record known from elsewhere (e.g. a checkpoint copied to WORM storage) must be present:\n' +
    '                      reveals a truncated tail, which a hash chain alone cannot',
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
    const publicKey = keyFile
      ? (JSON.parse(await readFile(resolve(keyFile), 'utf8')) as object)
      : undefined
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
    const report = await verifyAuditChain(
      files.map((f) => resolve(f)),
      options,
    )
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    else if (report.ok) {
      process.stdout.write(
        `ok: ${report.records} records, last seq ${report.lastSeq}, head ${report.headHash}${report.warning ? `\nwarning: ${report.warning}` : ''}\n`,
      )
    } else {
      const e = report.error
      process.stdout.write(
        `TAMPERED: ${e ? `${e.file ?? ''}${e.line > 0 ? ` line ${e.line}` : ''}${e.seq !== undefined ? ` (seq ${e.seq})` : ''}: ${e.reason}` : 'verification failed'}\n`,
      )
    }
    return report.ok ? 0 : 1
  },
}
