/**
 * `sluice config check` validates a config file; `sluice config schema` prints its JSON Schema
 * for editors.
 *
 * @module
 */
import { z } from 'zod'
import { metadataWarnings } from '../auth/index.js'
import { configSchema } from '../config/index.js'
import { loadChecked } from './reload.js'
import { usage, type Command } from './index.js'

export const configCommand: Command = {
  name: 'config',
  summary:
    'Check a config file (config check) or print the JSON Schema of the config (config schema)',
  usage: 'sluice config check --config FILE | sluice config schema',
  description:
    'config check loads the config and every file it names (policies, lock and its signature, JWKS files) the way serve does, and prints the config hash /readyz will report; exit 2 with file, path and reason when something does not load. config schema prints the JSON Schema of the config for editors.',
  examples: [
    'sluice config check --config examples/demo/sluice.yaml',
    'sluice config schema > sluice.schema.json',
  ],
  options: {
    config: { type: 'string', short: 'c' },
  },
  async run({ values, positionals }) {
    const [sub] = positionals
    if (sub === 'schema') {
      const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' })
      process.stdout.write(
        `${JSON.stringify({ $id: 'https://sluice.dev/schema/sluice.config.json', title: 'sluice config', ...schema }, null, 2)}\n`,
      )
      return 0
    }
    if (sub === 'check') {
      if (!values.config) throw usage('config check needs --config FILE')
      // What serve checks before it starts: the config and every file it references.
      const { config, files, hash, lock } = await loadChecked(values.config as string)
      const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`
      const parts = [
        count(Object.keys(config.servers).length, 'server'),
        count(config.policies?.length ?? 0, 'policy file'),
        ...(lock ? ['a lock'] : []),
      ]
      // What serve would warn about at start, on stderr so that stdout stays one line.
      for (const warning of config.identity ? metadataWarnings(config.identity) : [])
        process.stderr.write(`sluice config: warning: ${warning}\n`)
      process.stdout.write(
        `ok: ${config.file} (${parts.join(', ')}; ${count(files.length, 'file')} read, config ${hash})\n`,
      )
      return 0
    }
    throw usage('expected `config check` or `config schema`')
  },
}
