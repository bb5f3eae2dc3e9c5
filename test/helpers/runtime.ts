/**
 * Test helper: a real runtime (sandbox pool, upstreams, policy, audit, engine) from an inline
 * config, with temp files for policies, records and audit. Released with `close()`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { compose, type Runtime } from '../../src/cli/compose.js'
import { parseConfig } from '../../src/config/index.js'
import type { Principal } from '../../src/types.js'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const FIXTURES = join(ROOT, 'test', 'fixtures')
export const SERVERS = {
  memory: join(ROOT, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js'),
  filesystem: join(ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js'),
  everything: join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'),
  recording: join(FIXTURES, 'servers/recording.mjs'),
}

export interface TestRuntime extends Runtime {
  dir: string
  recordFile: string
  /** Calls the recording fixture received, in order. */
  recorded(): Array<{ tool: string; args: Record<string, unknown> }>
  principal(overrides?: Partial<Principal>): Principal
}

export async function testRuntime(options: {
  config?: Record<string, unknown>
  policy?: string
  /** Add the recording fixture as server `rec` (with these extra server settings). */
  recording?: boolean | Record<string, unknown>
  env?: Record<string, string>
  /** Runs in the config folder before the config is read (files a config entry names). */
  before?: (dir: string) => void
}): Promise<TestRuntime> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-rt-'))
  options.before?.(dir)
  const recordFile = join(dir, 'calls.jsonl')
  const servers: Record<string, unknown> = { ...((options.config?.servers as object) ?? {}) }
  if (options.recording) {
    servers.rec = {
      command: process.execPath,
      args: [SERVERS.recording],
      env: { RECORD_FILE: recordFile, ...options.env },
      ...(typeof options.recording === 'object' ? options.recording : {}),
    }
  }
  const raw: Record<string, unknown> = {
    sandbox: { workers: 1, prewarm: 1 },
    ...options.config,
    servers,
  }
  if (options.policy !== undefined) {
    writeFileSync(join(dir, 'policy.yaml'), options.policy)
    raw.policies = ['policy.yaml']
  }
  const config = parseConfig(raw, join(dir, 'sluice.yaml'), dir)
  let runtime: Runtime
  try {
    runtime = await compose(config, { allowAllWithoutPolicies: true, log: () => undefined })
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
  return {
    ...runtime,
    dir,
    recordFile,
    recorded: () =>
      existsSync(recordFile)
        ? readFileSync(recordFile, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l))
        : [],
    principal: (overrides = {}) => ({
      sub: 'alice',
      iss: 'test',
      scopes: [],
      claims: {},
      authMethod: 'local',
      ...overrides,
    }),
    async close() {
      try {
        await runtime.close()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}
