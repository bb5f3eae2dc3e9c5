/**
 * The risk score, factor by factor, with its limits at N and N+1 (the free-string cap, the
 * score cap, the level thresholds), pinnedness of package runners, and the secrets a server
 * needs; and the review diff's schema and secret signals.
 */
import { describe, expect, it } from 'vitest'
import {
  createLock,
  diffLocks,
  diffSchema,
  HIGH_RISK,
  MEDIUM_RISK,
  RISK_WEIGHTS,
  riskLevel,
  secretsOf,
  serverRisk,
  toolRisk,
  unpinnedPackage,
  type ServerFacts,
} from '../../src/registry/index.js'
import { isSecretHeader } from '../../src/config/index.js'
import type { ToolDefinition } from '../../src/types.js'

const local: ServerFacts = {
  source: { type: 'stdio', command: 'node', args: ['s.js'] },
  secrets: [],
  signed: true,
}
const closed = (properties: Record<string, unknown> = {}) => ({
  type: 'object',
  properties,
  additionalProperties: false,
})
const readOnly = { readOnlyHint: true, openWorldHint: false }

describe('toolRisk', () => {
  it('is 0 for a read-only, closed-world tool with a closed schema on a signed, local, pinned server', () => {
    expect(toolRisk({ name: 't', inputSchema: closed(), annotations: readOnly }, local)).toEqual({
      score: 0,
      level: 'low',
      reasons: [],
    })
  })

  it('adds free-form strings 0.5 each up to 1.5: three strings and four cost the same', () => {
    const strings = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`s${i}`, { type: 'string' }]))
    const score = (n: number) =>
      toolRisk({ name: 't', inputSchema: closed(strings(n)), annotations: readOnly }, local).score
    expect([score(1), score(2), score(3), score(4)]).toEqual([
      0.5,
      1,
      RISK_WEIGHTS.freeStringMax,
      RISK_WEIGHTS.freeStringMax,
    ])
    // A string with an enum, a pattern, a format or a maxLength is not free-form.
    const bounded = closed({
      a: { type: 'string', enum: ['x'] },
      b: { type: 'string', maxLength: 10 },
      c: { type: 'string', format: 'uri' },
    })
    expect(toolRisk({ name: 't', inputSchema: bounded, annotations: readOnly }, local).score).toBe(
      0,
    )
  })

  it('caps the score at 10 and explains every point', () => {
    const worst: ToolDefinition = {
      name: 'wipe',
      inputSchema: {
        type: 'object',
        properties: { a: { type: 'string' }, b: { type: 'string' }, c: { type: 'string' } },
      },
      annotations: { destructiveHint: true, openWorldHint: true },
    }
    const remote: ServerFacts = {
      source: { type: 'http', url: 'https://x.example.com/mcp' },
      secrets: ['header X-Api-Key'],
      signed: false,
    }
    const risk = toolRisk(worst, remote)
    expect(risk.score).toBe(10)
    expect(risk.level).toBe('high')
    expect(risk.reasons).toEqual([
      '+2 annotations.readOnlyHint is not true: may change state',
      '+2 annotations.destructiveHint: true',
      '+1.5 annotations.openWorldHint: true: reaches systems outside',
      '+1.5 inputSchema: free-form strings (no enum, pattern, format or maxLength): a, b, c',
      '+1 inputSchema.additionalProperties is not false: accepts fields it does not name',
      '+1 source: remote server: runs outside this host, at whatever version it serves',
      '+1 credentials: needs header X-Api-Key',
      '+1 lock: not signed',
    ])
  })

  it('levels: high from 7, medium from 4', () => {
    expect([
      riskLevel(HIGH_RISK),
      riskLevel(HIGH_RISK - 0.1),
      riskLevel(MEDIUM_RISK),
      riskLevel(MEDIUM_RISK - 0.1),
    ]).toEqual(['high', 'medium', 'medium', 'low'])
  })
})

describe('unpinnedPackage', () => {
  it('accepts exact versions and names what floats', () => {
    const stdio = (command: string, ...args: string[]) => ({
      type: 'stdio' as const,
      command,
      args,
    })
    expect(unpinnedPackage(stdio('npx', '-y', '@acme/tool@1.2.3'))).toBeUndefined()
    expect(unpinnedPackage(stdio('npx', '-y', '@acme/tool'))).toBe('npx @acme/tool')
    expect(unpinnedPackage(stdio('npx', '-y', '@acme/tool@latest'))).toBe('npx @acme/tool@latest')
    expect(unpinnedPackage(stdio('npx', '-y', '@acme/tool@^1.2.3'))).toBe('npx @acme/tool@^1.2.3')
    expect(unpinnedPackage(stdio('uvx', 'acme==1.0.0'))).toBeUndefined()
    expect(unpinnedPackage(stdio('uvx', 'acme'))).toBe('uvx acme')
    expect(
      unpinnedPackage(stdio('docker', 'run', '-i', '--rm', '-e', 'TOKEN', 'ghcr.io/acme/t:1.0.0')),
    ).toBeUndefined()
    expect(unpinnedPackage(stdio('docker', 'run', '-i', '--rm', 'ghcr.io/acme/t'))).toBe(
      'docker image ghcr.io/acme/t',
    )
    expect(unpinnedPackage(stdio('docker', 'run', '-i', 'ghcr.io/acme/t:latest'))).toBe(
      'docker image ghcr.io/acme/t:latest',
    )
    expect(unpinnedPackage(stdio('node', 'server.js'))).toBeUndefined()
  })

  it('makes an unpinned npx server riskier by the unpinned weight', () => {
    const tool: ToolDefinition = { name: 't', inputSchema: closed(), annotations: readOnly }
    const floating: ServerFacts = {
      ...local,
      source: { type: 'stdio', command: 'npx', args: ['-y', 'pkg'] },
    }
    expect(toolRisk(tool, floating).reasons).toEqual([
      `+${RISK_WEIGHTS.unpinned} source: npx pkg is not pinned to an exact version`,
    ])
  })
})

describe('serverRisk and secretsOf', () => {
  it('is the server factors plus its riskiest tool', () => {
    const tools: ToolDefinition[] = [
      { name: 'read', inputSchema: closed(), annotations: readOnly },
      {
        name: 'write',
        inputSchema: closed(),
        annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: false },
      },
    ]
    expect(serverRisk(tools, { ...local, signed: false })).toEqual({
      score: 3,
      level: 'low',
      reasons: ['+1 lock: not signed', '+2 tools: riskiest is write'],
    })
  })

  it('names secrets, never values', () => {
    expect(
      secretsOf(
        {
          command: 'x',
          args: [],
          env: {},
          credentials: { grant: 'env', env: { B: 'env:B', A: 'file:/a' } },
        },
        isSecretHeader,
      ),
    ).toEqual(['env A', 'env B'])
    expect(
      secretsOf(
        {
          url: 'https://x/mcp',
          headers: { Authorization: 'Bearer s3cr3t', Accept: 'x' },
          credentials: { grant: 'static', header: 'X-Key', valueFrom: 'env:K' },
        },
        isSecretHeader,
      ),
    ).toEqual(['header Authorization', 'header X-Key'])
  })
})

describe('diffSchema', () => {
  it('tells widened from narrowed', () => {
    const before = {
      type: 'object',
      properties: {
        a: { type: 'string' },
        b: { type: 'string', enum: ['x', 'y'] },
        c: { type: 'number' },
      },
      required: ['a'],
      additionalProperties: false,
    }
    const after = {
      type: 'object',
      properties: {
        a: { type: 'string' },
        b: { type: 'string', enum: ['x', 'z'] },
        d: { type: 'string' },
      },
      required: ['a', 'd'],
    }
    expect(diffSchema(before, after)).toEqual({
      widened: [
        'new property d (required)',
        'additionalProperties no longer false: accepts fields it does not name',
        'b: enum adds ["z"]',
      ],
      narrowed: ['property c removed', 'b: enum drops ["y"]'],
    })
    expect(diffSchema(after, { ...after, required: ['a'] })).toEqual({
      widened: ['d is no longer required'],
      narrowed: [],
    })
    expect(
      diffSchema(
        { properties: { n: { type: ['number', 'string'] } } },
        { properties: { n: { type: 'number' } } },
      ),
    ).toEqual({
      widened: [],
      narrowed: ['n: type number|string → number'],
    })
  })
})

describe('diffLocks', () => {
  const tool: ToolDefinition = { name: 't', inputSchema: closed() }
  const lock = (secrets: string[], tools: ToolDefinition[] = [tool]) =>
    createLock(
      { s: { source: { type: 'http', url: 'https://x.example.com/mcp' }, tools, secrets } },
      { generatedAt: new Date(0) },
    )

  it('is empty for the same catalogue, and names new secrets, added and removed servers', () => {
    expect(diffLocks(lock([]), lock([])).changed).toBe(false)
    const secrets = diffLocks(lock([]), lock(['header X-Api-Key']))
    expect(secrets.servers[0]).toMatchObject({
      server: 's',
      secretsAdded: ['header X-Api-Key'],
      secretsRemoved: [],
    })
    const added = diffLocks(undefined, lock(['env A']))
    expect(added).toMatchObject({
      changed: true,
      base: 'none',
      serversAdded: [{ server: 's', tools: ['t'], secrets: ['env A'] }],
    })
    const removed = diffLocks(lock([]), createLock({}))
    expect(removed).toMatchObject({ changed: true, serversRemoved: ['s'] })
  })

  it('flags destructiveHint turned on', () => {
    const on = diffLocks(lock([]), lock([], [{ ...tool, annotations: { destructiveHint: true } }]))
    expect(on.servers[0]!.tools[0]!.annotations).toEqual([
      { key: 'destructiveHint', to: true, signal: 'destructiveHint turned on' },
    ])
  })
})
