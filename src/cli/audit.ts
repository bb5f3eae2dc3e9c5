/**
 * `sluice audit verify FILE...`: checks the hash chain (and signed checkpoints) of audit files.
 *
 * @module
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { verifyAuditChain } from '../audit/index.js'
import { usage, type Command } from './index.js'

export const auditCommand: Command = {
  name: 'audit',
  summary: 'Verify audit files: any edit, deletion, reordering or truncation is reported with its place',
  usage: 'sluice audit verify FILE... [--public-key JWK_FILE] [--json]',
  options: {
    'public-key': { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals }) {
    const [sub, ...files] = positionals
    if (sub !== 'verify' || files.length === 0) throw usage('expected `audit verify FILE...`')
    const keyFile = values['public-key'] as string | undefined
    const publicKey = keyFile ? (JSON.parse(await readFile(resolve(keyFile), 'utf8')) as object) : undefined
    const report = await verifyAuditChain(files.map((f) => resolve(f)), publicKey ? { publicKey } : {})
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    else if (report.ok) {
      process.stdout.write(`ok: ${report.records} records, last seq ${report.lastSeq}, head ${report.headHash}${report.warning ? `\nwarning: ${report.warning}` : ''}\n`)
    } else {
      const e = report.error
      process.stdout.write(`TAMPERED: ${e ? `${e.file ?? ''}${e.line !== undefined ? ` line ${e.line}` : ''}${e.seq !== undefined ? ` (seq ${e.seq})` : ''}: ${e.reason}` : 'verification failed'}\n`)
    }
    return report.ok ? 0 : 1
  },
}
