/**
 * Data labels in the config: `servers.<name>.labels` and `servers.<name>.tools.<tool>.labels`,
 * the label alphabet and length at N and N+1, the count per entry at N and N+1, strict per-tool
 * settings with did-you-mean, and the labels a tool ends up with.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  declaredLabels,
  loadConfig,
  MAX_LABELS_PER_ENTRY,
  parseConfig,
  toolLabels,
} from '../../src/config/index.js'
import { configRefusal } from '../helpers/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'sluice-config-labels-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const server = (extra: Record<string, unknown>) => ({
  servers: { crm: { command: 'node', ...extra } },
})

const message = (input: unknown) => configRefusal(input, '/etc/sluice.yaml', dir)

const ALPHABET =
  'expected a lower-case letter, then at most 63 of a-z, 0-9, "_" and "-" (^[a-z][a-z0-9_-]{0,63}$)'

describe('label spelling', () => {
  it('accepts a label of 64 characters and refuses 65, naming file and path', () => {
    const ok = `c${'x'.repeat(63)}`
    expect(parseConfig(server({ labels: [ok] })).servers.crm!.labels).toEqual([ok])
    const long = `c${'x'.repeat(64)}`
    expect(message(server({ labels: [long] }))).toBe(
      `invalid config /etc/sluice.yaml: servers.crm.labels[0]: "${long}" is not a label: ${ALPHABET}`,
    )
  })

  it('accepts lower-case letters, digits, "_" and "-" after a first letter', () => {
    const labels = ['a', 'pii', 'egress-2', 'top_secret', 'z9']
    expect(parseConfig(server({ labels })).servers.crm!.labels).toEqual(labels)
  })

  it.each([
    ['Confidential', 'upper case'],
    ['1st', 'a digit first'],
    ['-x', 'a dash first'],
    ['', 'empty'],
    ['con fidential', 'a space'],
    ['a.b', 'a dot'],
    ['émoi', 'a non-ASCII letter'],
  ])('refuses %j (%s)', (label) => {
    expect(message(server({ labels: [label] }))).toBe(
      `invalid config /etc/sluice.yaml: servers.crm.labels[0]: ${JSON.stringify(label)} is not a label: ${ALPHABET}`,
    )
  })

  it('names the path of a bad label on a tool', () => {
    expect(message(server({ tools: { send_email: { labels: ['ok', 'Egress'] } } }))).toBe(
      `invalid config /etc/sluice.yaml: servers.crm.tools.send_email.labels[1]: "Egress" is not a label: ${ALPHABET}`,
    )
  })

  it('refuses a label that is not a string', () => {
    expect(message(server({ labels: [7] }))).toBe(
      'invalid config /etc/sluice.yaml: servers.crm.labels[0]: expected string, received number',
    )
  })

  it(`accepts ${MAX_LABELS_PER_ENTRY} labels on one entry and refuses one more`, () => {
    const labels = Array.from({ length: MAX_LABELS_PER_ENTRY }, (_, i) => `l${i}`)
    expect(parseConfig(server({ labels })).servers.crm!.labels).toHaveLength(MAX_LABELS_PER_ENTRY)
    expect(message(server({ labels: [...labels, 'one-more'] }))).toBe(
      `invalid config /etc/sluice.yaml: servers.crm.labels: expected at most ${MAX_LABELS_PER_ENTRY} labels`,
    )
  })

  it('drops repeated labels', () => {
    expect(parseConfig(server({ labels: ['pii', 'pii'] })).servers.crm!.labels).toEqual(['pii'])
  })
})

describe('per-tool settings', () => {
  it('refuses an unknown key with a did-you-mean', () => {
    expect(message(server({ tools: { send_email: { label: ['egress'] } } }))).toBe(
      'invalid config /etc/sluice.yaml: servers.crm.tools.send_email: unknown key "label" (did you mean "labels"?)',
    )
  })

  it('suggests `tools` for a misspelt server key', () => {
    expect(message(server({ tool: { send_email: { labels: ['egress'] } } }))).toBe(
      'invalid config /etc/sluice.yaml: servers.crm: unknown key "tool" (did you mean "tools"?)',
    )
  })

  it('works on HTTP servers and from a YAML file, keeping the upstream spelling of tool names', () => {
    const file = join(dir, 'labels.yaml')
    writeFileSync(
      file,
      [
        'servers:',
        '  mail:',
        '    url: https://mail.example.com/mcp',
        '    labels: [external]',
        '    tools:',
        '      send-email: { labels: [egress] }',
      ].join('\n'),
    )
    const config = loadConfig(file)
    expect(config.servers.mail!.tools).toEqual({ 'send-email': { labels: ['egress'] } })
    expect(Object.isFrozen(config.servers.mail!.tools!['send-email']!.labels)).toBe(true)
  })
})

describe('toolLabels and declaredLabels', () => {
  const config = parseConfig({
    servers: {
      crm: { command: 'node', labels: ['pii', 'confidential'] },
      mail: {
        command: 'node',
        labels: ['external'],
        tools: { send_email: { labels: ['egress', 'external'] }, constructor: { labels: ['x'] } },
      },
      plain: { command: 'node' },
    },
  })

  it("merges the tool's labels with its server's, sorted, each once", () => {
    expect(toolLabels(config, 'mail', 'send_email')).toEqual(['egress', 'external'])
    expect(toolLabels(config, 'mail', 'read_inbox')).toEqual(['external'])
    expect(toolLabels(config, 'crm', 'read_item')).toEqual(['confidential', 'pii'])
    expect(toolLabels(config, 'plain', 'anything')).toEqual([])
    expect(toolLabels(config, 'nope', 'anything')).toEqual([])
  })

  it('reads own keys only: a tool named like an Object.prototype member is a name', () => {
    expect(toolLabels(config, 'mail', 'constructor')).toEqual(['external', 'x'])
    expect(toolLabels(config, 'mail', 'toString')).toEqual(['external'])
    expect(toolLabels(config, 'mail', '__proto__')).toEqual(['external'])
  })

  it('lists every declared label once, sorted', () => {
    expect(declaredLabels(config)).toEqual(['confidential', 'egress', 'external', 'pii', 'x'])
    expect(declaredLabels(parseConfig({}))).toEqual([])
  })
})
