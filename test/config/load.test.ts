import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  DEFAULT_LIMITS,
  expandVars,
  loadConfig,
  parseConfig,
  readSecretRef,
} from '../../src/config/index.js'
import { failure } from '../helpers/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function write(name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

describe('loadConfig', () => {
  it('returns the defaults without a file: no servers, default limits', () => {
    const config = loadConfig()
    expect(config.servers).toEqual({})
    expect(config.limits).toEqual({ ...DEFAULT_LIMITS, perPrincipal: {} })
    expect(Object.isFrozen(config.limits)).toBe(true)
    expect(config.shutdown).toEqual({ drainMs: 25_000 })
  })

  it('store: in-process by default; store.redis takes a redis:// URL with defaults, else names the path', () => {
    expect(loadConfig().store).toEqual({})
    const store = (body: string) => write('store.yaml', `store: ${body}\n`)
    expect(loadConfig(store('{ redis: { url: "redis://127.0.0.1:6379" } }')).store.redis).toEqual({
      url: 'redis://127.0.0.1:6379',
      keyPrefix: 'sluice:',
      commandTimeoutMs: 1000,
      connectTimeoutMs: 2000,
    })
    const bad = failure(() => loadConfig(store('{ redis: { url: "http://127.0.0.1:6379" } }')))
    expect(bad.code).toBe('CONFIG_INVALID')
    expect(bad.message).toContain('store.redis.url')
    expect(bad.message).toContain('expected a redis:// or rediss:// URL')
    expect(
      failure(() => loadConfig(store('{ redis: { url: "redis://h:1", commandTimeoutMs: 0 } }')))
        .message,
    ).toContain('store.redis.commandTimeoutMs')
  })

  it('admission limits at N and N+1 of their bounds, with the path named', () => {
    const limits = (body: string) => write('limits.yaml', `limits: ${body}\n`)
    expect(loadConfig(limits('{ maxQueuedExecutions: 0 }')).limits.maxQueuedExecutions).toBe(0)
    expect(failure(() => loadConfig(limits('{ maxQueuedExecutions: -1 }'))).message).toContain(
      'limits.maxQueuedExecutions',
    )
    expect(
      loadConfig(limits('{ maxConcurrentExecutions: 1 }')).limits.maxConcurrentExecutions,
    ).toBe(1)
    expect(failure(() => loadConfig(limits('{ maxConcurrentExecutions: 0 }'))).message).toContain(
      'limits.maxConcurrentExecutions',
    )
    expect(
      loadConfig(limits('{ perPrincipal: { executionsPerMinute: 1 } }')).limits.perPrincipal,
    ).toEqual({ executionsPerMinute: 1 })
    expect(
      failure(() => loadConfig(limits('{ perPrincipal: { executionsPerMinute: 0 } }'))).message,
    ).toContain('limits.perPrincipal.executionsPerMinute')
    expect(failure(() => loadConfig(limits('{ perPrincipal: { perHour: 5 } }'))).message).toContain(
      'limits.perPrincipal',
    )
  })

  it('accepts an .mcp.json file as is (mcpServers alias, JSON is YAML)', () => {
    const file = write(
      'mcp.json',
      JSON.stringify({
        mcpServers: { memory: { command: 'node', args: ['x.js'], env: { A: 'b' } } },
      }),
    )
    const config = loadConfig(file)
    expect(config.servers.memory).toMatchObject({
      command: 'node',
      args: ['x.js'],
      env: { A: 'b' },
    })
  })

  it('names the file, the path and what was expected for a wrong type', () => {
    const file = write('bad-type.yaml', 'servers:\n  memory:\n    command: 42\n')
    const e = failure(() => loadConfig(file))
    expect(e.code).toBe('CONFIG_INVALID')
    expect(e.message).toContain(file)
    expect(e.message).toMatch(/servers\.memory/)
    expect(e.message).toMatch(/expected/)
  })

  it('holds searchBudgetBytes under descriptionBudgetBytes (N - 1 loads, N is refused)', () => {
    const gateway = (search: number) =>
      write(
        `gateway-${search}.yaml`,
        `gateway:\n  descriptionBudgetBytes: 2048\n  searchBudgetBytes: ${search}\n`,
      )
    expect(loadConfig(gateway(2047)).gateway).toMatchObject({
      descriptionBudgetBytes: 2048,
      searchBudgetBytes: 2047,
    })
    const file = gateway(2048)
    expect(failure(() => loadConfig(file)).message).toBe(
      `invalid config ${file}: gateway.searchBudgetBytes: expected less than gateway.descriptionBudgetBytes: a search answer is part of that budget`,
    )
  })

  it('rejects unknown keys, naming them', () => {
    const file = write('unknown.yaml', 'limits:\n  timeoutMs: 10\n  timeoutSeconds: 3\n')
    const e = failure(() => loadConfig(file))
    expect(e.message).toContain('limits: unknown key "timeoutSeconds"')
  })

  it('suggests the key that was probably meant, and reports a typo of a required key once', () => {
    const file = write(
      'typos.yaml',
      'servers:\n  memory:\n    comand: node\n  web:\n    ulr: http://127.0.0.1:1/mcp\nlimits: { timeoutSeconds: 3, maxToolCals: 3 }\nidentty: {}\nwhatever: 1\n',
    )
    const e = failure(() => loadConfig(file))
    expect(e.message).toBe(
      `invalid config ${file}: ` +
        [
          'servers.memory: unknown key "comand" (did you mean "command"?)',
          'servers.web: unknown key "ulr" (did you mean "url"?)',
          'limits: unknown key "timeoutSeconds" (did you mean "timeoutMs"?)',
          'limits: unknown key "maxToolCals" (did you mean "maxToolCalls"?)',
          '(top level): unknown key "identty" (did you mean "identity"?)',
          '(top level): unknown key "whatever"',
        ].join('; '),
    )
    expect(e.message).not.toContain('\n')
  })

  it('reports YAML syntax errors with line and column', () => {
    const file = write('syntax.yaml', 'servers:\n  memory: [\n')
    const e = failure(() => loadConfig(file))
    expect(e.message).toMatch(/line \d+, column \d+/)
  })

  it('says when the file does not exist', () => {
    const e = failure(() => loadConfig(join(dir, 'missing.yaml')))
    expect(e.message).toContain('file not found')
  })

  it('refuses a passthrough grant at load', () => {
    const e = failure(() =>
      parseConfig({
        servers: { crm: { url: 'http://127.0.0.1:1/mcp', credentials: { grant: 'passthrough' } } },
      }),
    )
    expect(e.message).toContain('servers.crm.credentials.grant')
    expect(e.message).toContain('refused')
  })

  it('refuses inline secrets: a static grant value must be env: or file:', () => {
    const e = failure(() =>
      parseConfig({
        servers: {
          crm: {
            url: 'http://127.0.0.1:1/mcp',
            credentials: { grant: 'static', header: 'Authorization', valueFrom: 'Bearer abc' },
          },
        },
      }),
    )
    expect(e.message).toContain('expected "env:NAME" or "file:PATH"')
  })

  it('rejects server names that collide once sanitised', () => {
    const e = failure(() =>
      parseConfig({ servers: { 'my-db': { command: 'a' }, my_db: { command: 'b' } } }),
    )
    expect(e.message).toContain('collides')
  })

  it('rejects server names outside the safe alphabet', () => {
    const e = failure(() => parseConfig({ servers: { 'bad name': { command: 'a' } } }))
    expect(e.message).toContain('servers.bad name')
  })

  it('resolves relative paths against the config file folder', () => {
    const file = write('paths.yaml', 'policies: [p/a.yaml]\nlock: { file: l.json }\n')
    const config = loadConfig(file)
    expect(config.policies).toEqual([join(dir, 'p/a.yaml')])
    expect(config.lock?.file).toBe(join(dir, 'l.json'))
  })

  it('checks limits at their bounds', () => {
    expect(parseConfig({ limits: { maxToolCalls: 100_000 } }).limits.maxToolCalls).toBe(100_000)
    expect(failure(() => parseConfig({ limits: { maxToolCalls: 100_001 } })).message).toContain(
      'limits.maxToolCalls',
    )
  })
})

describe('expandVars', () => {
  it('expands ${VAR}, ${VAR:-default} and ${SLUICE_CONFIG_DIR}', () => {
    process.env.SLUICE_TEST_VAR = 'v'
    expect(expandVars('${SLUICE_TEST_VAR}/${SLUICE_NOPE:-d}/${SLUICE_CONFIG_DIR}', '/cfg')).toBe(
      'v/d//cfg',
    )
    delete process.env.SLUICE_TEST_VAR
  })

  it('fails on an unset variable without default instead of using an empty string', () => {
    const e = failure(() =>
      parseConfig({ servers: { s: { command: 'node', args: ['${SLUICE_SURELY_UNSET}'] } } }),
    )
    expect(e.message).toBe(
      'invalid config <inline>: servers.s.args[0]: ${SLUICE_SURELY_UNSET} is not set (use ${SLUICE_SURELY_UNSET:-default} for a default)',
    )
  })
})

describe('readSecretRef', () => {
  it('reads env: and file: references and never accepts inline values', () => {
    process.env.SLUICE_TEST_SECRET = 's3cret'
    expect(readSecretRef('env:SLUICE_TEST_SECRET', dir)).toBe('s3cret')
    write('secret.txt', 'from-file\n')
    expect(readSecretRef('file:secret.txt', dir)).toBe('from-file')
    expect(failure(() => readSecretRef('env:SLUICE_UNSET_SECRET', dir)).message).toContain(
      'not set',
    )
    expect(failure(() => readSecretRef('inline', dir)).message).not.toContain('inline')
    delete process.env.SLUICE_TEST_SECRET
  })
})
