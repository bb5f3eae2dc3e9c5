/**
 * `sluice evidence` (built CLI) on the demo config and on minimal configs: every zero-trust
 * control domain is present with a status and evidence naming what enforces it (the identity
 * config, policy rules and case-file results, the lock and its signature status, the audit chain
 * head, the trace exporter) and what was observed to reach it (probes of the sandbox, the pins and
 * the limits), in Markdown and in JSON; statuses follow the deployment (absent without identity,
 * policies or lock; partial when the audit chain is broken; not observed without a detector
 * self-test); and no secret from the telemetry config is printed.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuditLog, verifyAuditFile } from '../../src/audit/index.js'
import type { EvidenceReport } from '../../src/cli/evidence.js'
import { ROOT } from '../helpers/runtime.js'

const run = promisify(execFile)
const CLI = join(ROOT, 'dist', 'src', 'main.js')
const DEMO = join(ROOT, 'examples', 'demo', 'sluice.yaml')
const DOMAINS = [
  'identity',
  'access and privilege',
  'tool governance',
  'observability',
  'input and output',
  'integrity and recovery',
  'governance',
]

async function sluice(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: ROOT })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, stdout: err.stdout, stderr: err.stderr }
  }
}

async function evidenceJson(config: string): Promise<EvidenceReport> {
  const { code, stdout } = await sluice(['evidence', '--config', config, '--format', 'json'])
  expect(code).toBe(0)
  return JSON.parse(stdout) as EvidenceReport
}

const control = (r: EvidenceReport, id: string) => r.controls.find((c) => c.id === id)!
const domain = (r: EvidenceReport, name: string) => r.domains.find((d) => d.domain === name)!

beforeAll(() => {
  expect(existsSync(CLI), 'run `npm run build` first').toBe(true)
})

describe('sluice evidence on the demo config', () => {
  let report: EvidenceReport
  let markdown: string
  beforeAll(async () => {
    report = await evidenceJson(DEMO)
    const md = await sluice(['evidence', '--config', DEMO])
    expect(md.code).toBe(0)
    markdown = md.stdout
  })

  it('covers every control domain, in order, with the status each control observed', () => {
    expect(report.domains.map((d) => d.domain)).toEqual(DOMAINS)
    for (const d of report.domains) {
      expect(d.controls.length).toBeGreaterThan(0)
      for (const id of d.controls) expect(control(report, id).domain).toBe(d.domain)
    }
    // INT-1 follows whatever the demo's own audit file holds; the next test checks it.
    const statuses = Object.fromEntries(
      report.controls.filter((c) => c.id !== 'INT-1').map((c) => [c.id, c.status]),
    )
    expect(statuses).toEqual({
      'IDN-1': 'enforced',
      'IDN-2': 'partial',
      'ACC-1': 'enforced',
      'ACC-2': 'enforced',
      'ACC-3': 'enforced',
      'TGV-1': 'partial',
      'TGV-2': 'partial',
      'OBS-1': 'partial',
      'OBS-2': 'enforced',
      'IO-1': 'enforced',
      'IO-2': 'enforced',
      'IO-3': 'absent',
      'IO-4': 'absent',
      'IO-5': 'enforced',
      'GOV-1': 'enforced',
      'GOV-2': 'enforced',
    })
    expect(domain(report, 'input and output').status).toBe('absent')
    for (const c of report.controls) {
      expect(c.evidence.length).toBeGreaterThan(0)
      expect(c.observed.length).toBeGreaterThan(0)
    }
    expect(report.config).toBe(DEMO)
  })

  it('observes the sandbox, the pins and the limits with probes, not claims', () => {
    expect(control(report, 'IO-1').observed).toBe(
      "read the lock's pins for 3 configured server(s); ran validateArgs on {} against 26 pinned schemas with required fields (26 refused) and on a probe schema; ran the redactor on a probe secret",
    )
    expect(control(report, 'IO-1').evidence[0]).toBe(
      'pinned: memory 9, filesystem 14, everything 13',
    )
    expect(control(report, 'ACC-3').evidence[0]).toBe(
      'maxToolCalls 50: code asking for 51 calls got 50 to the host, then CALL_LIMIT',
    )
    expect(report.facts.sandbox).toMatchObject({ ambient: [], freshGlobals: true })
    expect(control(report, 'IO-3').evidence[0]).toBe(
      'guardrails.pii not configured: values reach the model as they are',
    )
  })

  it('names the identity config', () => {
    expect(control(report, 'IDN-1').status).toBe('enforced')
    expect(control(report, 'IDN-1').evidence.join('\n')).toContain(
      'audience http://127.0.0.1:8787/mcp',
    )
    expect(control(report, 'IDN-1').evidence.join('\n')).toContain(
      'issuer https://sluice.invalid/dev-issuer',
    )
    expect(report.facts.identity).toMatchObject({
      configured: true,
      audience: 'http://127.0.0.1:8787/mcp',
      tenantClaim: 'tenant',
      localSubject: 'local-user',
    })
  })

  it('names every policy rule and the case-file results', () => {
    const acc = control(report, 'ACC-1')
    expect(acc.status).toBe('enforced')
    const text = acc.evidence.join('\n')
    for (const rule of ['memory-read', 'filesystem-read', 'everything-no-env', 'memory-write'])
      expect(text).toContain(`rule ${rule} (`)
    // Every case file beside the config's policy files, each against the policies it names.
    expect(report.facts.policy.caseFiles).toEqual([
      { file: 'policies/demo.cases.yaml', passed: expect.any(Number), failed: 0 },
      { file: 'policies/labels.cases.yaml', passed: 5, failed: 0 },
    ])
    expect(report.facts.policy.caseFiles[0]!.passed).toBeGreaterThan(10)
    expect(control(report, 'GOV-1').status).toBe('enforced')
    expect(control(report, 'GOV-2').evidence.join('\n')).toContain(
      'approve rule everything-large-sums-need-a-human',
    )
  })

  it('names the lock, its digest and its signature status', () => {
    const lock = report.facts.lock
    expect(lock.file).toBe('examples/demo/sluice.lock.json')
    expect(lock.sha256).toBe(`sha256:${sha256Hex(join(ROOT, 'examples/demo/sluice.lock.json'))}`)
    expect(lock.pinnedTools).toBeGreaterThan(0)
    expect(lock.signatureVerified).toBe(false)
    const tgv = control(report, 'TGV-1')
    // Not signature-checked in the demo: pinned, but only partially enforced.
    expect(tgv.status).toBe('partial')
    expect(tgv.evidence.join('\n')).toMatch(
      /lock is (not signed|signed, but the signature is not checked)/,
    )
  })

  it('names the audit chain head (or says there are no records yet) and the trace exporter', async () => {
    const audit = report.facts.audit
    expect(audit.file).toBe('examples/demo/.data/audit.jsonl')
    const int = control(report, 'INT-1').evidence.join('\n')
    if (audit.files.length > 0) {
      const verified = await verifyAuditFile(join(ROOT, 'examples/demo/.data/audit.jsonl'))
      if (verified.ok)
        expect(int).toContain(`audit chain head: seq ${verified.lastSeq}, ${verified.headHash}`)
    } else expect(int).toContain('(no records yet)')
    expect(report.facts.telemetry).toMatchObject({ exporter: 'none', captureContent: false })
    expect(control(report, 'OBS-1').evidence[0]).toBe('trace exporter: none')
  })

  it('renders the same report as Markdown: a domain table, a control table, a section per control', () => {
    expect(markdown.startsWith('# sluice control evidence\n')).toBe(true)
    for (const d of report.domains)
      expect(markdown).toContain(`| ${d.domain} | ${d.status} | ${d.controls.join(', ')} |`)
    for (const c of report.controls) {
      expect(markdown).toContain(`| ${c.id} | ${c.domain} |`)
      expect(markdown).toContain(`## ${c.id} ${c.domain}: ${c.status}`)
    }
    for (const c of report.controls) expect(markdown).toContain(`Observed: ${c.observed}.`)
    // Multi-line CEL is one line per bullet.
    const bullets = markdown.split('\n').filter((l) => l.startsWith('- rule '))
    expect(bullets.length).toBe(report.facts.policy.rules.length)
    expect(markdown).toContain('- policies/demo.cases.yaml: ')
  })
})

/** The digest computed here, not by the code under test. */
function sha256Hex(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}

describe('sluice evidence on minimal configs', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-evidence-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('reports what is absent in a config with nothing configured', async () => {
    const file = join(dir, 'empty.yaml')
    writeFileSync(file, 'servers: {}\n')
    const report = await evidenceJson(file)
    expect(report.domains.map((d) => d.domain)).toEqual(DOMAINS)
    expect(control(report, 'IDN-1')).toMatchObject({
      status: 'absent',
      evidence: [expect.stringContaining('no identity')],
    })
    expect(control(report, 'ACC-1').status).toBe('absent')
    expect(control(report, 'ACC-1').evidence[0]).toContain('no policy files')
    expect(control(report, 'TGV-1')).toMatchObject({
      status: 'absent',
      evidence: [expect.stringContaining('no lock')],
    })
    expect(control(report, 'INT-1')).toMatchObject({
      status: 'absent',
      evidence: ['no audit file configured'],
    })
    expect(control(report, 'GOV-2').status).toBe('absent')
    expect(domain(report, 'identity').status).toBe('absent')
    expect(domain(report, 'integrity and recovery').status).toBe('absent')
  })

  it('shows the audit chain head, a broken chain as partial, and never a telemetry secret', async () => {
    const auditFile = join(dir, 'audit.jsonl')
    const log = await AuditLog.open({ file: auditFile, fsync: false })
    try {
      await log.append({ type: 'gateway.start' })
      await log.append({
        type: 'execution.start',
        executionId: 'e1',
        principal: { sub: 'alice', iss: 'test' },
      })
      await log.append({ type: 'execution.end', executionId: 'e1', status: 'ok' })
    } finally {
      await log.close()
    }
    const secret = 'otlp-secret-7f3a9c'
    const file = join(dir, 'sluice.yaml')
    writeFileSync(
      file,
      [
        'servers: {}',
        'audit: { file: audit.jsonl, fsync: true }',
        'telemetry:',
        '  exporter: otlp',
        `  endpoint: "https://user:${secret}@collector.example.com:4318/?token=${secret}"`,
        `  headers: { x-api-key: "${secret}" }`,
        '',
      ].join('\n'),
    )
    const good = await evidenceJson(file)
    const head = await verifyAuditFile(auditFile)
    expect(control(good, 'INT-1')).toMatchObject({ status: 'enforced' })
    expect(control(good, 'INT-1').evidence[0]).toBe(
      `audit chain head: seq 3, ${head.headHash} (3 records in ${auditFile})`,
    )
    expect(good.facts.audit).toMatchObject({
      ok: true,
      records: 3,
      lastSeq: 3,
      head: head.headHash,
    })
    expect(control(good, 'OBS-1').status).toBe('enforced')
    expect(control(good, 'OBS-1').evidence[0]).toBe(
      'trace exporter: otlp → https://collector.example.com:4318/ (headers: x-api-key)',
    )
    const md = await sluice(['evidence', '--config', file])
    const json = await sluice(['evidence', '--config', file, '--format', 'json'])
    expect(md.stdout + json.stdout).not.toContain(secret)

    // Edit one record: the chain no longer verifies, the control is only partial, and says where.
    const lines = readFileSync(auditFile, 'utf8').split('\n')
    lines[1] = lines[1]!.replace('"alice"', '"mallory"')
    writeFileSync(auditFile, lines.join('\n'))
    const broken = await evidenceJson(file)
    expect(control(broken, 'INT-1').status).toBe('partial')
    expect(control(broken, 'INT-1').evidence[0]).toMatch(/^audit chain DOES NOT verify: .*line 2: /)
    expect(domain(broken, 'integrity and recovery').status).toBe('partial')
  })

  it("runs this build's detectors for IO-3 and reports what they found", async () => {
    const file = join(dir, 'pii.yaml')
    writeFileSync(file, 'servers: {}\nguardrails: { pii: { detect: [email] } }\n')
    const report = await evidenceJson(file)
    expect(control(report, 'IO-3')).toMatchObject({
      status: 'enforced',
      observed: `read guardrails.pii in ${file}; ran the detectors on a probe string: 1/1 kinds found, 1/1 near misses ignored; no audit file: PII counts not observed`,
    })
    expect(domain(report, 'input and output').status).toBe('absent')
  })

  it('refuses an unknown format with a usage error', async () => {
    const { code, stderr } = await sluice([
      'evidence',
      '--config',
      join(dir, 'empty.yaml'),
      '--format',
      'xml',
    ])
    expect(code).toBe(2)
    expect(stderr).toContain('--format: expected md or json, got xml')
  })
})
