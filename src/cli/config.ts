/**
 * `sluice config check` validates a config file; `sluice config schema` prints its JSON Schema
 * for editors.
 *
 * @module
 */
import { z } from 'zod'
import { configSchema, loadConfig } from '../config/index.js'
import { usage, type Command } from './index.js'

export const configCommand: Command = {
  name: 'config',
  summary:
    'Check a config file (config check) or print the JSON Schema of the config (config schema)',
  usage: 'sluice config check --config FILE | sluice config schema',
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
      const config = loadConfig(values.config as string)
      process.stdout.write(
        `ok: ${config.file} (${Object.keys(config.servers).length} servers, ${config.policies?.length ?? 0} policy files)\n`,
      )
      return 0
    }
    throw usage('expected `config check` or `config schema`')
  },
}
