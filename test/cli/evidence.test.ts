/**
 * `buildEvidence` in-process, one domain at a time, on real files (configs, policies and case
 * files, locks signed with real keys, audit chains written by AuditLog, JWKS files) and with the
 * real probes (a fresh sandbox pool, validateArgs, the redactor, the metrics registry, text.ts):
 * each control is shown holding and not holding, and `observed` names what was looked at.
 *
 * The PII detectors' self-test does not exist on this branch yet, so IO-3 gets probe functions:
 * fixed outcomes, and one built on the real `detect` of src/guard for the one kind it has.
 */
import { spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { exportJWK, generateKeyPair } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { AuditLog } from '../../src/audit/index.js'
import {
  buildEvidence,
  probeSandbox,
  renderEvidenceMarkdown,
  type DetectorProbe,
  type EvidenceOptions,
  type EvidenceReport,
  type SandboxFacts,
} from '../../src/cli/evidence.js'
import { ioDomain } from '../../src/cli/evidence/io.js'
import { metricsFacts, observabilityDomain } from '../../src/cli/evidence/observability.js'
import { loadConfig, PII_KINDS, type Config, type PiiKind } from '../../src/config/index.js'
import { detect } from '../../src/guard/index.js'
import { createLock, writeLock } from '../../src/registry/index.js'
import { createSluiceMetrics } from '../../src/telemetry/index.js'
import type { ToolDefinition } from '../../src/types.js'
import { ROOT } from '../helpers/runtime.js'
import { tempDir } from '../upstream/helpers.js'

const dir = tempDir('sluice-evidence-unit-')
afterAll(() => dir.remove())
let seq = 0

/** Writes `raw` as a YAML config in a folder of its own and loads it. */
function config(raw: Record<string, unknown>, folder = join(dir.path, `c${seq++}`)): Config {
  const file = `${folder}.yaml`
  writeFileSync(file, stringify({ servers: {}, ...raw }))
  return loadConfig(file)
}

function file(name: string, text: string): string {
  const path = join(dir.path, name)
  writeFileSync(path, text)
  return path
}

const SERVER = { command: 'node', args: ['crm.js'], env: {} }
const find: ToolDefinition = {
  name: 'find',
  inputSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
}
const ping: ToolDefinition = { name: 'ping', inputSchema: { type: 'object' } }

/** A child process that opens the log at `file`, appends `events` and holds it until stopped. */
function holder(file: string, events: unknown[]): Promise<{ stop(): Promise<void> }> {
  const audit = pathToFileURL(join(ROOT, 'src/audit/index.ts')).href
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `const { AuditLog } = await import(${JSON.stringify(audit)})
       const log = await AuditLog.open({ file: ${JSON.stringify(file)}, fsync: false })
       for (const event of ${JSON.stringify(events)}) await log.append(event)
       process.stdout.write('OPEN\\n')
       process.stdin.resume()
       process.stdin.on('end', async () => { await log.close(); process.exit(0) })`,
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  )
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      if (c.toString().includes('OPEN'))
        resolve({
          stop: () =>
            new Promise<void>((done) => {
              child.once('exit', () => done())
              child.stdin!.end()
            }),
        })
    })
    child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)))
  })
}

/** A real sandbox probe, run once with the default limits; reused where the sandbox is not the subject. */
let sandbox: SandboxFacts
beforeAll(async () => {
  sandbox = await probeSandbox(config({}))
  expect(sandbox.error).toBeUndefined()
})

function evidence(cfg: Config, options: EvidenceOptions = {}): Promise<EvidenceReport> {
  return buildEvidence(cfg, { sandboxProbe: async () => sandbox, ...options })
}
const control = (r: EvidenceReport, id: string) => r.controls.find((c) => c.id === id)!
const domain = (r: EvidenceReport, name: string) => r.domains.find((d) => d.domain === name)!

describe('identity', () => {
  it('IDN-1 is enforced with identity configured, and names the keys its jwksFile holds', async () => {
    const { publicKey } = await generateKeyPair('ES256')
    const jwks = file('idp.jwks.json', JSON.stringify({ keys: [await exportJWK(publicKey)] }))
    const cfg = config({
      identity: {
        audience: 'https://gw.test/mcp',
        issuers: [{ issuer: 'https://idp.test', jwksFile: jwks, algorithms: ['ES256'] }],
      },
    })
    const idn = control(await evidence(cfg), 'IDN-1')
    expect(idn.status).toBe('enforced')
    expect(idn.observed).toBe(`read identity in ${cfg.file}; parsed the jwksFile of each issuer`)
    expect(idn.evidence[1]).toBe(
      `issuer https://idp.test: keys ${jwks} (ES256); the file holds 1 key(s)`,
    )
  })

  it('IDN-1 says a missing jwksFile refuses every token of that issuer', async () => {
    const cfg = config({
      identity: {
        audience: 'https://gw.test/mcp',
        issuers: [
          { issuer: 'https://idp.test', jwksFile: 'missing.jwks.json', algorithms: ['ES256'] },
        ],
      },
    })
    expect(control(await evidence(cfg), 'IDN-1').evidence[1]).toBe(
      `issuer https://idp.test: keys ${join(dir.path, 'missing.jwks.json')} (ES256); the file cannot be read (no such file): tokens of this issuer are refused`,
    )
  })

  it('IDN-2 is enforced only when TLS requests client certificates', async () => {
    const identity = {
      audience: 'https://gw.test/mcp',
      issuers: [
        { issuer: 'https://idp.test', jwksUri: 'https://idp.test/jwks', algorithms: ['ES256'] },
      ],
    }
    const tls = { certFile: 'cert.pem', keyFile: 'key.pem' }
    const mtls = await evidence(
      config({ identity, gateway: { tls: { ...tls, requestClientCert: true } } }),
    )
    expect(control(mtls, 'IDN-2')).toMatchObject({
      status: 'enforced',
      evidence: [`TLS: cert ${join(dir.path, 'cert.pem')}, client certificates requested`],
    })
    const plain = await evidence(config({ identity, gateway: { tls } }))
    expect(control(plain, 'IDN-2').status).toBe('partial')
    expect(control(plain, 'IDN-1').evidence[1]).toBe(
      'issuer https://idp.test: keys https://idp.test/jwks (ES256); fetched from the URI at first use (not fetched here)',
    )
    expect(control(await evidence(config({})), 'IDN-2').status).toBe('absent')
  })
})

describe('access and privilege', () => {
  const policy = stringify({
    rules: [{ id: 'crm-read', effect: 'allow', when: 'tool.server == "crm"' }],
  })
  const cases = (expect: string) =>
    stringify({
      policy: ['p.yaml'],
      cases: [
        {
          name: 'reads',
          principal: { sub: 'a' },
          tool: { server: 'crm', name: 'find' },
          args: {},
          expect,
        },
      ],
    })

  it('ACC-1 and GOV-1 are enforced with passing case files, partial with a failing one', async () => {
    const good = join(dir.path, 'good')
    const bad = join(dir.path, 'bad')
    for (const [d, e] of [
      [good, 'allow'],
      [bad, 'deny'],
    ] as const) {
      mkdirSync(d, { recursive: true })
      writeFileSync(join(d, 'p.yaml'), policy)
      writeFileSync(join(d, 'p.cases.yaml'), cases(e))
    }
    const passing = await evidence(config({ policies: [join(good, 'p.yaml')] }))
    expect(control(passing, 'ACC-1').status).toBe('enforced')
    expect(control(passing, 'ACC-1').observed).toBe(
      'loaded 1 policy file(s) (1 rules) and ran 1 case file(s) beside them',
    )
    expect(control(passing, 'GOV-1').status).toBe('enforced')
    const failing = await evidence(config({ policies: [join(bad, 'p.yaml')] }))
    expect(control(failing, 'ACC-1').status).toBe('partial')
    expect(control(failing, 'GOV-1').evidence).toEqual([
      `${join(bad, 'p.cases.yaml')}: 0 passing, 1 failing`,
    ])
  })

  it('ACC-1 is absent when the policies do not load, and says why', async () => {
    const broken = file(
      'broken.yaml',
      'rules: [{ id: x, effect: allow, when: "tool.server ==" }]\n',
    )
    const acc = control(await evidence(config({ policies: [broken] })), 'ACC-1')
    expect(acc.status).toBe('absent')
    expect(acc.observed).toBe('loaded 1 policy file(s): they do not load')
    expect(acc.evidence[0]).toMatch(/^policies do not load: .*broken\.yaml/)
  })

  it('ACC-2 is enforced when every secret reference resolves and the loader refuses passthrough', async () => {
    process.env['EVIDENCE_TEST_SECRET'] = 'a-secret-value-1234'
    const secretFile = file('api.secret', 'another-secret-5678\n')
    try {
      const cfg = config({
        servers: {
          crm: {
            ...SERVER,
            credentials: {
              grant: 'static',
              header: 'X-Api-Key',
              valueFrom: 'env:EVIDENCE_TEST_SECRET',
            },
          },
          billing: {
            ...SERVER,
            credentials: { grant: 'static', header: 'X-Api-Key', valueFrom: `file:${secretFile}` },
          },
          open: SERVER,
        },
      })
      const r = await evidence(cfg)
      const acc = control(r, 'ACC-2')
      expect(acc.status).toBe('enforced')
      expect(acc.observed).toBe(
        `read servers.*.credentials in ${cfg.file} (3 servers), looked up 2 secret reference(s) without reading them; loaded a probe config with grant "passthrough": refused`,
      )
      expect(acc.evidence.slice(0, 3)).toEqual([
        'crm: static grant',
        'billing: static grant',
        'open: no credentials',
      ])
      expect(acc.evidence[3]).toContain(
        '"passthrough" is refused: the caller\'s token never leaves the gateway',
      )
      // Looked up, never read: no secret value is anywhere in the report.
      const json = JSON.stringify(r)
      expect(json).not.toContain('a-secret-value-1234')
      expect(json).not.toContain('another-secret-5678')
    } finally {
      delete process.env['EVIDENCE_TEST_SECRET']
    }
  })

  it('ACC-2 is partial when a secret reference points at nothing', async () => {
    const cfg = config({
      servers: {
        crm: {
          ...SERVER,
          credentials: {
            grant: 'static',
            header: 'X-Api-Key',
            valueFrom: 'env:EVIDENCE_TEST_UNSET',
          },
        },
        billing: {
          ...SERVER,
          credentials: { grant: 'static', header: 'X-Api-Key', valueFrom: 'file:nowhere.secret' },
        },
      },
    })
    const acc = control(await evidence(cfg), 'ACC-2')
    expect(acc.status).toBe('partial')
    expect(acc.evidence).toContain(
      'secret not found: crm: env:EVIDENCE_TEST_UNSET (calls to that server fail with GRANT_FAILED)',
    )
    expect(acc.evidence).toContain(
      'secret not found: billing: file:nowhere.secret (calls to that server fail with GRANT_FAILED)',
    )
  })

  it('ACC-3 shows maxToolCalls at N and N+1, the memory limit and the deadline hit in a real sandbox', async () => {
    const cfg = config({ limits: { maxToolCalls: 3, memoryBytes: 8 * 1024 * 1024 } })
    const r = await buildEvidence(cfg)
    const acc = control(r, 'ACC-3')
    expect(acc.status).toBe('enforced')
    expect(acc.observed).toBe(
      `read limits in ${cfg.file}; ran the call, memory and time limits in a fresh sandbox`,
    )
    expect(acc.evidence[0]).toBe(
      'maxToolCalls 3: code asking for 4 calls got 3 to the host, then CALL_LIMIT',
    )
    expect(acc.evidence[1]).toBe(
      'memoryBytes 8388608: allocating that much ended with MEMORY_LIMIT',
    )
    expect(acc.evidence[2]).toMatch(
      /^a busy loop under a 100 ms deadline ended with TIMEOUT after \d+ ms \(timeoutMs 30000 is the same check, not waited for\)$/,
    )
    expect(r.facts.sandbox.timeout!.ms).toBeGreaterThanOrEqual(100)
  })

  it('ACC-3 probes up to 1000 tool calls (N) and says so at 1001 (N+1)', async () => {
    const at = await probeSandbox(config({ limits: { maxToolCalls: 1000 } }))
    expect(at.callLimit).toEqual({ limit: 1000, hostCalls: 1000, code: 'CALL_LIMIT' })
    const over = config({ limits: { maxToolCalls: 1001 } })
    const r = await buildEvidence(over)
    expect(r.facts.sandbox.callLimit).toEqual({ limit: 1001, skipped: 'over 1000 calls' })
    expect(control(r, 'ACC-3').status).toBe('partial')
    expect(control(r, 'ACC-3').evidence[0]).toBe('maxToolCalls 1001: not probed (over 1000 calls)')
  })

  it('ACC-3 and IO-2 are not observed when the sandbox probe could not run', async () => {
    const failed: SandboxFacts = {
      error: 'the sandbox did not start: no worker',
      ambient: [],
      instances: [],
    }
    const r = await buildEvidence(config({}), { sandboxProbe: async () => failed })
    expect(control(r, 'ACC-3').status).toBe('not-observed')
    expect(control(r, 'ACC-3').observed).toContain(
      'the sandbox probe did not run: the sandbox did not start: no worker',
    )
    expect(control(r, 'IO-2')).toMatchObject({
      status: 'not-observed',
      observed: 'the sandbox probe did not run: the sandbox did not start: no worker',
    })
    expect(domain(r, 'access and privilege').status).toBe('absent')
  })
})

describe('tool governance', () => {
  it('TGV-1 is enforced for a signature verified with the configured key, partial unchecked, absent when it fails', async () => {
    const signer = generateKeyPairSync('ed25519')
    const other = generateKeyPairSync('ed25519')
    const lockFile = join(dir.path, 'signed.lock.json')
    await writeLock(lockFile, createLock({ crm: { config: SERVER, tools: [find, ping] } }), {
      signingKey: signer.privateKey,
    })
    const pub = file(
      'lock.pub.pem',
      signer.publicKey.export({ type: 'spki', format: 'pem' }) as string,
    )
    const otherPub = file(
      'other.pub.pem',
      other.publicKey.export({ type: 'spki', format: 'pem' }) as string,
    )
    const servers = { crm: SERVER }

    const verified = await evidence(
      config({ servers, lock: { file: lockFile, publicKeyFile: pub } }),
    )
    expect(control(verified, 'TGV-1')).toMatchObject({
      status: 'enforced',
      observed: `read ${lockFile} and checked its signature with ${pub}`,
    })
    expect(control(verified, 'TGV-1').evidence[1]).toBe(`signature verified with ${pub}`)

    const unchecked = await evidence(config({ servers, lock: { file: lockFile } }))
    expect(control(unchecked, 'TGV-1').status).toBe('partial')
    expect(control(unchecked, 'TGV-1').evidence[1]).toBe(
      'lock is signed, but the signature is not checked (no publicKeyFile)',
    )

    const wrongKey = await evidence(
      config({ servers, lock: { file: lockFile, publicKeyFile: otherPub } }),
    )
    expect(control(wrongKey, 'TGV-1').status).toBe('absent')
    expect(control(wrongKey, 'TGV-1').evidence[0]).toMatch(
      new RegExp(`^lock ${lockFile.replace(/[.]/g, '\\.')} does not load: `),
    )
  })
  it('TGV-2 reads the risk pinned in the lock and the rules on tool.risk: enforced with one, partial without', async () => {
    const lockFile = join(dir.path, 'risk.lock.json')
    await writeLock(lockFile, createLock({ crm: { config: SERVER, tools: [find, ping] } }))
    const rules = file(
      'risk.yaml',
      'rules:\n  - id: risky-needs-a-human\n    effect: approve\n    when: tool.risk.level == "high"\n',
    )
    const servers = { crm: SERVER }
    const withRule = await evidence(
      config({ servers, lock: { file: lockFile }, policies: [rules] }),
    )
    expect(control(withRule, 'TGV-2')).toMatchObject({
      status: 'enforced',
      observed: `read the risk scores pinned in ${lockFile} and the \`when\` of 1 policy rules`,
    })
    expect(control(withRule, 'TGV-2').evidence[0]).toMatch(/^2 pinned tools scored: /)
    expect(control(withRule, 'TGV-2').evidence.at(-1)).toBe(
      'policy rules on tool.risk: risky-needs-a-human',
    )
    const withoutRule = await evidence(config({ servers, lock: { file: lockFile } }))
    expect(control(withoutRule, 'TGV-2').status).toBe('partial')
    expect(control(withoutRule, 'TGV-2').evidence.at(-1)).toBe('no policy rule reads tool.risk')
    expect(control(await evidence(config({ servers })), 'TGV-2').status).toBe('absent')
  })
})

describe('observability', () => {
  it('OBS-2 is enforced when the rendered registry declares every named family', async () => {
    const obs = control(await evidence(config({})), 'OBS-2')
    expect(obs.status).toBe('enforced')
    expect(obs.observed).toMatch(
      /^rendered a fresh registry of the metrics GET \/metrics serves: \d+ families, 6\/6 of those named here$/,
    )
    expect(obs.evidence).toContain('sluice_upstream_up: declared')
  })

  it('OBS-2 is partial when a named family is missing from the exposition', () => {
    const withoutUpstream = () =>
      createSluiceMetrics()
        .render()
        .split('\n')
        .filter((line) => !line.includes('sluice_upstream_up'))
        .join('\n')
    const cfg = config({})
    const [, obs] = observabilityDomain(
      cfg,
      { exporter: 'none', headerNames: [], captureContent: false },
      metricsFacts(withoutUpstream),
    )
    expect(obs!.status).toBe('partial')
    expect(obs!.observed).toContain('5/6 of those named here')
    expect(obs!.evidence).toContain('sluice_upstream_up: MISSING')
  })
})

describe('input and output: IO-1 schemas, caps and redaction', () => {
  const lockFile = join(dir.path, 'io.lock.json')
  beforeAll(async () => {
    await writeLock(lockFile, createLock({ crm: { config: SERVER, tools: [find, ping] } }))
  })

  it('is enforced when the lock pins every configured server and validateArgs refuses what the pins refuse', async () => {
    const io = control(
      await evidence(config({ servers: { crm: SERVER }, lock: { file: lockFile } })),
      'IO-1',
    )
    expect(io.status).toBe('enforced')
    expect(io.observed).toBe(
      "read the lock's pins for 1 configured server(s); ran validateArgs on {} against 1 pinned schemas with required fields (1 refused) and on a probe schema; ran the redactor on a probe secret",
    )
    expect(io.evidence.slice(0, 3)).toEqual([
      'pinned: crm 2',
      'probe schema: a string for an integer field refused (args.count: expected integer, got string); an integer accepted',
      'redactor: a registered secret removed raw, removed base64-encoded',
    ])
  })

  it('is partial for a server the lock does not pin, for exposed unpinned tools, and without a lock', async () => {
    const two = await evidence(
      config({ servers: { crm: SERVER, billing: SERVER }, lock: { file: lockFile } }),
    )
    expect(control(two, 'IO-1').status).toBe('partial')
    expect(control(two, 'IO-1').evidence[0]).toBe('pinned: crm 2, billing NOT PINNED')
    const open = await evidence(
      config({ servers: { crm: SERVER }, lock: { file: lockFile, allowUnpinned: true } }),
    )
    expect(control(open, 'IO-1').status).toBe('partial')
    expect(control(open, 'IO-1').evidence[1]).toBe('unpinned tools exposed for: crm')
    const none = await evidence(config({ servers: { crm: SERVER } }))
    expect(control(none, 'IO-1').status).toBe('partial')
    expect(control(none, 'IO-1').evidence[0]).toBe(
      'no lock: arguments are validated against the live schemas, which nothing pins',
    )
  })
})

describe('input and output: IO-2 the sandbox', () => {
  it('is enforced from a real probe: no host globals, fresh globals per execution, memory zeroed', async () => {
    const r = await evidence(config({}))
    const io = control(r, 'IO-2')
    expect(io.status).toBe('enforced')
    expect(io.evidence[0]).toBe('host globals defined in the sandbox: none')
    expect(io.evidence[1]).toMatch(
      /^a global set by one execution is undefined in the next; instances \S+ then \S+$/,
    )
    expect(io.evidence[2]).toMatch(
      /: 0 non-zero bytes before instantiation; the first one's needle not found at its start \(and found after the first run\)$/,
    )
    expect(new Set(sandbox.instances).size).toBe(2)
  })

  it('is partial when the probe saw a host global or a leftover', async () => {
    const leaky: SandboxFacts = { ...sandbox, ambient: ['process'], freshGlobals: false }
    const io = control(await evidence(config({}), { sandboxProbe: async () => leaky }), 'IO-2')
    expect(io.status).toBe('partial')
    expect(io.evidence[0]).toBe('host globals defined in the sandbox: process')
    expect(io.evidence[1]).toMatch(/^a global set by one execution is STILL DEFINED in the next/)
  })
})

describe('input and output: IO-3 PII guardrails', () => {
  const ALL: DetectorProbe = (kinds) =>
    [...kinds].map((kind) => ({ kind, found: true, nearMissIgnored: true }))
  const pii = (extra: Record<string, unknown> = {}) => config({ guardrails: { pii: { ...extra } } })

  it('is absent when guardrails.pii is not configured or off', async () => {
    const none = control(await evidence(config({}), { detectorProbe: ALL }), 'IO-3')
    expect(none.status).toBe('absent')
    expect(none.evidence[0]).toBe(
      'guardrails.pii not configured: values reach the model as they are',
    )
    const off = control(await evidence(pii({ mode: 'off' }), { detectorProbe: ALL }), 'IO-3')
    expect(off.status).toBe('absent')
    expect(off.evidence[0]).toBe('guardrails.pii.mode: off')
  })

  it('is not observed without a detector probe, and says so', async () => {
    const cfg = pii()
    const io = control(await evidence(cfg), 'IO-3')
    expect(io.status).toBe('not-observed')
    expect(io.observed).toBe(
      `read guardrails.pii in ${cfg.file}; detectors not probed: detectors unavailable; no audit file: PII counts not observed`,
    )
  })

  it('is enforced when every configured kind is found and every near miss ignored', async () => {
    const seen: Array<ReadonlySet<PiiKind>> = []
    const probe: DetectorProbe = (kinds) => {
      seen.push(kinds)
      return ALL(kinds)
    }
    const r = await evidence(pii({ resolveFor: [] }), { detectorProbe: probe })
    const io = control(r, 'IO-3')
    expect(io.status).toBe('enforced')
    expect(io.observed).toContain(
      'ran the detectors on a probe string: 9/9 kinds found, 9/9 near misses ignored',
    )
    expect(seen).toEqual([new Set(PII_KINDS)])
    expect(io.evidence.slice(0, 4)).toEqual([
      'mode tokenize: values become stable tokens ([EMAIL_1]) kept in a vault for 3600 s (at most 10,000 per session, 1,000,000 in all)',
      `detect: ${PII_KINDS.join(', ')}`,
      'boundary model: result, logs and errors that reach the model',
      'resolveFor: none (tokens never become values again)',
    ])
  })

  it('says where the vault lives: in Redis, under the key reference, when store.redis is set', async () => {
    const shared = config({
      store: { redis: { url: 'redis://127.0.0.1:6379' } },
      guardrails: { pii: { vaultKeyFrom: 'env:SLUICE_VAULT_KEY' } },
    })
    const io = control(await evidence(shared, { detectorProbe: ALL }), 'IO-3')
    expect(io.evidence[0]).toBe(
      'mode tokenize: values become stable tokens ([EMAIL_1]) kept in the vault in Redis shared by every replica, AES-256-GCM under env:SLUICE_VAULT_KEY, for 3600 s (at most 10,000 per session)',
    )
  })

  it('is partial when the probe misses a kind or flags a near miss; a kind it omits counts as missed', async () => {
    const missCard: DetectorProbe = (kinds) =>
      ALL(kinds).map((r) => (r.kind === 'card' ? { ...r, found: false } : r))
    const io = control(await evidence(pii(), { detectorProbe: missCard }), 'IO-3')
    expect(io.status).toBe('partial')
    expect(io.observed).toContain('8/9 kinds found, 9/9 near misses ignored')
    expect(io.evidence).toContain('detector probe: card NOT found')

    const flagsIp: DetectorProbe = (kinds) =>
      ALL(kinds).map((r) => (r.kind === 'ip' ? { ...r, nearMissIgnored: false } : r))
    const ip = control(await evidence(pii(), { detectorProbe: flagsIp }), 'IO-3')
    expect(ip.status).toBe('partial')
    expect(ip.evidence).toContain('detector probe: a near miss of ip was flagged')

    const omitsJwt: DetectorProbe = (kinds) => ALL(kinds).filter((r) => r.kind !== 'jwt')
    const jwt = control(await evidence(pii(), { detectorProbe: omitsJwt }), 'IO-3')
    expect(jwt.status).toBe('partial')
    expect(jwt.evidence).toContain('detector probe: jwt NOT found')
  })

  it('is not observed when the probe reports nothing or throws', async () => {
    const empty = control(await evidence(pii(), { detectorProbe: () => [] }), 'IO-3')
    expect(empty.status).toBe('not-observed')
    expect(empty.observed).toContain('detectors not probed: the self-test reported no kind')
    const thrown = control(
      await evidence(pii(), {
        detectorProbe: () => {
          throw new Error('the detector tables did not load')
        },
      }),
      'IO-3',
    )
    expect(thrown.status).toBe('not-observed')
    expect(thrown.observed).toContain(
      'detectors not probed: the self-test failed: the detector tables did not load',
    )
  })

  it('passes only the configured kinds, names the others, and holds with a probe built on the real detect', async () => {
    // src/guard's detect finds emails on this branch; the probe string and its near miss are real.
    const realEmail: DetectorProbe = (kinds) =>
      [...kinds].map((kind) => ({
        kind,
        found: detect('write to alice@example.com', kinds).some((d) => d.kind === kind),
        nearMissIgnored: detect('alice at example dot com', kinds).length === 0,
      }))
    const io = control(
      await evidence(pii({ detect: ['email'], mode: 'redact' }), { detectorProbe: realEmail }),
      'IO-3',
    )
    expect(io.status).toBe('enforced')
    expect(io.evidence.slice(0, 2)).toEqual([
      'mode redact: values become [EMAIL]; nothing is kept',
      'detect: email (not detected: phone, card, iban, ssn, ip, api_key, jwt, private_key)',
    ])
    expect(io.observed).toContain('1/1 kinds found, 1/1 near misses ignored')
  })

  it('counts the audit records that carry pii, over the configured chain and a segment beside it', async () => {
    const folder = join(dir.path, 'pii-audit')
    mkdirSync(folder)
    const auditFile = join(folder, 'audit.jsonl')
    // Another process holds the configured file, so this one writes a segment beside it.
    const other = await holder(auditFile, [
      { type: 'gateway.start' },
      { type: 'execution.end', executionId: 'e1', status: 'ok', pii: { email: 2 } },
      { type: 'call.result', executionId: 'e1', tool: 'crm.find', pii: { email: 1, phone: 1 } },
      // Counts on another record type are not findings of a call or an execution.
      { type: 'call.approval', executionId: 'e1', tool: 'crm.find', pii: { email: 5 } },
    ])
    try {
      const log = await AuditLog.open({ file: auditFile, fsync: false })
      try {
        expect(log.file).not.toBe(auditFile)
        await log.append({
          type: 'call.decision',
          executionId: 'e2',
          tool: 'crm.find',
          decision: 'allow',
          pii: { card: 1 },
        })
        await log.append({ type: 'execution.end', executionId: 'e2', status: 'ok' })
      } finally {
        await log.close()
      }
    } finally {
      await other.stop()
    }
    const r = await evidence(
      config({ guardrails: { pii: {} }, audit: { file: auditFile, fsync: true } }),
      { detectorProbe: ALL },
    )
    expect(r.facts.audit.pii).toEqual({
      records: 6,
      withPii: 3,
      byKind: { email: 3, phone: 1, card: 1 },
    })
    expect(r.facts.audit.records).toBe(4)
    expect(control(r, 'IO-3').evidence.at(-1)).toBe(
      'counted 6 audit records, 3 with pii counts (card 1, email 3, phone 1)',
    )
    expect(control(r, 'INT-1').status).toBe('enforced')
    expect(control(r, 'INT-1').observed).toBe(
      'verified the hash chain of 1 file(s) (4 records) and 1 segment chain(s) beside it',
    )
    expect(control(r, 'INT-1').evidence[1]).toMatch(
      /^segment .*audit\.\d{8}T\d{6}Z-\d+\.jsonl: 2 records, verifies$/,
    )

    // An edited segment record: the segment no longer verifies, and INT-1 says which and where.
    const segment = r.facts.audit.segments[0]!.files.at(-1)!
    const lines = readFileSync(segment, 'utf8').split('\n')
    lines[0] = lines[0]!.replace('"crm.find"', '"crm.drop"')
    writeFileSync(segment, lines.join('\n'))
    const broken = await evidence(
      config({ guardrails: { pii: {} }, audit: { file: auditFile, fsync: true } }),
    )
    expect(control(broken, 'INT-1').status).toBe('partial')
    expect(control(broken, 'INT-1').evidence[1]).toMatch(
      new RegExp(`^segment ${segment.replace(/[.]/g, '\\.')} DOES NOT verify: .*line 1: `),
    )
  })
})

describe('input and output: IO-4 spotlighting and IO-5 invisible characters', () => {
  it('IO-4 is enforced from a real fence when guardrails.spotlight is on, absent when off', async () => {
    const on = control(await evidence(config({ guardrails: { spotlight: true } })), 'IO-4')
    expect(on).toMatchObject({
      status: 'enforced',
      evidence: [
        'two fences got different 80-bit ids',
        'a forged close inside the text was defanged',
      ],
    })
    expect(on.observed).toContain('fenced a probe text holding a forged close')
    const off = control(await evidence(config({})), 'IO-4')
    expect(off).toMatchObject({
      status: 'absent',
      evidence: ['guardrails.spotlight: false (tool text reaches the model unfenced)'],
    })
  })

  it('IO-5 is enforced from text.ts removing every class of invisible character', async () => {
    const io = control(await evidence(config({})), 'IO-5')
    expect(io.status).toBe('enforced')
    expect(io.observed).toBe(
      'ran stripInvisible and cleanMessage (src/text.ts) on 7 probe strings: 7/7 classes removed',
    )
    expect(io.evidence).toContain('tag characters (U+E0000–E007F): removed')
  })
})

describe('input and output: what a failing probe reports', () => {
  it('IO-4 and IO-5 are partial when the fence or the removal does not hold, and name what failed', async () => {
    const cfg = config({ guardrails: { spotlight: true } })
    const r = await evidence(cfg)
    const io = {
      ...r.facts.io,
      spotlight: { freshIds: true, forgedCloseDefanged: false },
      unicode: [
        { name: 'bidi overrides (U+202A–202E)', removed: false },
        ...r.facts.io.unicode.slice(1),
      ],
    }
    const controls = ioDomain(cfg, io, r.facts.sandbox, r.facts.audit)
    const spot = controls.find((c) => c.id === 'IO-4')!
    expect(spot.status).toBe('partial')
    expect(spot.evidence[1]).toBe('a forged close inside the text STILL CLOSES the fence')
    const text = controls.find((c) => c.id === 'IO-5')!
    expect(text.status).toBe('partial')
    expect(text.observed).toContain('6/7 classes removed')
    expect(text.evidence[0]).toBe('bidi overrides (U+202A–202E): KEPT')
  })
})

describe('domains and Markdown', () => {
  it('a domain takes its weakest control: absent < not-observed < partial < enforced', async () => {
    const lockFile = join(dir.path, 'dom.lock.json')
    await writeLock(lockFile, createLock({ crm: { config: SERVER, tools: [find] } }))
    const base = {
      servers: { crm: SERVER },
      lock: { file: lockFile },
      guardrails: { pii: {}, spotlight: true },
    }
    const all = await evidence(config(base), {
      detectorProbe: (kinds) =>
        [...kinds].map((kind) => ({ kind, found: true, nearMissIgnored: true })),
    })
    expect(domain(all, 'input and output').status).toBe('enforced')
    const unprobed = await evidence(config(base))
    expect(domain(unprobed, 'input and output').status).toBe('not-observed')
    const noSpotlight = await evidence(config({ ...base, guardrails: { pii: {} } }))
    expect(domain(noSpotlight, 'input and output').status).toBe('absent')
  })

  it('every control carries what it observed, and the Markdown names it', async () => {
    const r = await evidence(config({ guardrails: { pii: {} } }))
    const md = renderEvidenceMarkdown(r)
    expect(r.controls.map((c) => c.id)).toEqual([
      'IDN-1',
      'IDN-2',
      'ACC-1',
      'ACC-2',
      'ACC-3',
      'TGV-1',
      'TGV-2',
      'OBS-1',
      'OBS-2',
      'IO-1',
      'IO-2',
      'IO-3',
      'IO-4',
      'IO-5',
      'INT-1',
      'GOV-1',
      'GOV-2',
    ])
    for (const c of r.controls) {
      expect(c.observed.length).toBeGreaterThan(0)
      expect(md).toContain(
        `## ${c.id} ${c.domain}: ${c.status}\n\n${c.control}\n\nObserved: ${c.observed}.\n`,
      )
    }
    expect(md).toContain('Observed: read guardrails.pii in')
    expect(md).toContain('detectors not probed: detectors unavailable')
  })
})
