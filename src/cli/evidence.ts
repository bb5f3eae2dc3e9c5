/**
 * `sluice evidence`: maps each zero-trust control domain to what enforces it in this deployment,
 * read from the config and the artefacts it names (policies and their case files, the lock and its
 * signature, the audit chain head, the trace exporter). Markdown for people, JSON for tools: the
 * JSON carries the same controls plus the facts behind them (`facts`), so an assessor can hold it
 * against their own control matrix. Reads files only; never starts or contacts an upstream.
 *
 * Nothing secret is printed: header values of the OTLP exporter are never shown (names only), and
 * an endpoint's user-info and query string are dropped.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, join, relative } from 'node:path'
import { listAuditFiles, verifyAuditChain } from '../audit/index.js'
import { effectiveExporter, loadConfig, type Config } from '../config/index.js'
import { isSluiceError } from '../errors.js'
import { allowAllPolicy, loadPolicies, runPolicyCases } from '../policy/index.js'
import { readLock } from '../registry/index.js'
import { usage, type Command } from './index.js'

export type ControlStatus = 'enforced' | 'partial' | 'absent'

/** The seven domains, in the order every report lists them. */
export const CONTROL_DOMAINS = [
  'identity',
  'access and privilege',
  'tool governance',
  'observability',
  'input and output',
  'integrity and recovery',
  'governance',
] as const
export type ControlDomain = (typeof CONTROL_DOMAINS)[number]

export interface Control {
  id: string
  domain: ControlDomain
  control: string
  status: ControlStatus
  evidence: string[]
}

/** One domain's verdict: the weakest status of its controls. */
export interface DomainSummary {
  domain: ControlDomain
  status: ControlStatus
  controls: string[]
}

/** The facts the controls are built from, as data. */
export interface EvidenceFacts {
  identity: {
    configured: boolean
    audience?: string
    issuers: Array<{ issuer: string; keys: string; algorithms: string[] }>
    tenantClaim?: string
    localSubject?: string
  }
  policy: {
    files: string[]
    rules: Array<{ id: string; effect: string; when: string; file: string }>
    budgets: string[]
    caseFiles: Array<{ file: string; passed: number; failed: number; error?: string }>
    loadError?: string
  }
  lock: {
    file?: string
    sha256?: string
    generatedAt?: string
    signed: boolean
    signatureVerified: boolean
    pinnedTools: number
    allowUnpinned?: boolean
    loadError?: string
  }
  audit: {
    file?: string
    files: string[]
    ok?: boolean
    records?: number
    lastSeq?: number
    head?: string
    lastCheckpoint?: { seq: number; hash: string }
    error?: string
    fsync?: boolean
    checkpointEvery?: number
  }
  telemetry: {
    exporter: string
    endpoint?: string
    headerNames: string[]
    captureContent: boolean
    otelEnvEndpoint?: string
  }
}

export interface EvidenceReport {
  generatedAt: string
  config: string | undefined
  domains: DomainSummary[]
  controls: Control[]
  facts: EvidenceFacts
}

function status(ok: boolean, partial = false): ControlStatus {
  return ok ? 'enforced' : partial ? 'partial' : 'absent'
}

const RANK: Record<ControlStatus, number> = { absent: 0, partial: 1, enforced: 2 }

/** A path as the operator wrote it relative to the working directory, when it is below it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
}

/** CEL spread over lines in YAML reads as one line in a report. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim()
}

/** An endpoint without user-info or query (either may hold a credential). */
function safeUrl(url: string): string {
  try {
    const u = new URL(url)
    u.username = ''
    u.password = ''
    u.search = ''
    u.hash = ''
    return u.toString()
  } catch {
    return '(unparseable URL)'
  }
}

function message(cause: unknown): string {
  return isSluiceError(cause) || cause instanceof Error ? cause.message : String(cause)
}

function identityFacts(config: Config): EvidenceFacts['identity'] {
  const id = config.identity
  if (id === undefined) return { configured: false, issuers: [] }
  return {
    configured: true,
    audience: id.audience,
    issuers: id.issuers.map((i) => ({
      issuer: i.issuer,
      keys: i.jwksUri ?? shown(i.jwksFile ?? ''),
      algorithms: [...i.algorithms],
    })),
    ...(id.tenantClaim ? { tenantClaim: id.tenantClaim } : {}),
    ...(id.local?.sub ? { localSubject: id.local.sub } : {}),
  }
}

function policyFacts(config: Config): EvidenceFacts['policy'] {
  const files = (config.policies ?? []).map(shown)
  const facts: EvidenceFacts['policy'] = { files, rules: [], budgets: [], caseFiles: [] }
  try {
    const set = config.policies?.length ? loadPolicies(config.policies) : allowAllPolicy()
    const summary = set.describe()
    facts.rules = summary.rules.map((r) => ({
      id: r.id,
      effect: r.effect,
      when: oneLine(r.when),
      file: shown(r.file),
    }))
    facts.budgets = summary.budgets.map(
      (b) => `${b.id}: ${b.maxCallsPerExecution} calls per execution when ${oneLine(b.when)}`,
    )
  } catch (cause) {
    facts.loadError = message(cause)
    return facts
  }
  // Case files beside the policy files (`*.cases.yaml`), each run against the policies it names.
  const dirs = [...new Set((config.policies ?? []).map((f) => dirname(f)))]
  for (const dir of dirs) {
    const cases = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.cases.yaml'))
          .sort()
      : []
    for (const c of cases) {
      const file = join(dir, c)
      try {
        const report = runPolicyCases(file)
        facts.caseFiles.push({ file: shown(file), passed: report.passed, failed: report.failed })
      } catch (cause) {
        facts.caseFiles.push({ file: shown(file), passed: 0, failed: 0, error: message(cause) })
      }
    }
  }
  return facts
}

async function lockFacts(config: Config): Promise<EvidenceFacts['lock']> {
  if (!config.lock) return { signed: false, signatureVerified: false, pinnedTools: 0 }
  const facts: EvidenceFacts['lock'] = {
    file: shown(config.lock.file),
    signed: false,
    signatureVerified: false,
    pinnedTools: 0,
    allowUnpinned: config.lock.allowUnpinned,
  }
  try {
    facts.sha256 = `sha256:${createHash('sha256').update(readFileSync(config.lock.file)).digest('hex')}`
    const lock = await readLock(
      config.lock.file,
      config.lock.publicKeyFile ? { publicKeyFile: config.lock.publicKeyFile } : {},
    )
    facts.generatedAt = lock.generatedAt
    facts.signed = lock.signature !== undefined
    // readLock throws on a bad signature when a key is configured, so reaching here means verified.
    facts.signatureVerified = config.lock.publicKeyFile !== undefined
    facts.pinnedTools = Object.values(lock.servers).reduce(
      (n, s) => n + Object.keys(s.tools).length,
      0,
    )
  } catch (cause) {
    facts.loadError = message(cause)
  }
  return facts
}

async function auditFacts(config: Config): Promise<EvidenceFacts['audit']> {
  if (!config.audit) return { files: [] }
  const facts: EvidenceFacts['audit'] = {
    file: shown(config.audit.file),
    files: [],
    fsync: config.audit.fsync,
    checkpointEvery: config.audit.signingKeyFile ? config.audit.checkpointEvery : 0,
  }
  const files = existsSync(dirname(config.audit.file))
    ? await listAuditFiles(config.audit.file)
    : []
  facts.files = files.map(shown)
  if (files.length === 0) return facts
  const report = await verifyAuditChain(files)
  facts.ok = report.ok
  facts.records = report.records
  facts.lastSeq = report.lastSeq
  facts.head = report.headHash
  if (report.lastCheckpoint) facts.lastCheckpoint = report.lastCheckpoint
  if (!report.ok) {
    const e = report.error
    facts.error = e
      ? `${e.file ? `${shown(e.file)} ` : ''}line ${e.line}: ${e.reason}`
      : 'verification failed'
  }
  return facts
}

function telemetryFacts(config: Config): EvidenceFacts['telemetry'] {
  const tel = config.telemetry
  const env =
    process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ?? process.env['OTEL_EXPORTER_OTLP_ENDPOINT']
  return {
    exporter: effectiveExporter(tel),
    ...(tel.endpoint ? { endpoint: safeUrl(tel.endpoint) } : {}),
    headerNames: Object.keys(tel.headers).sort(),
    captureContent: tel.captureContent,
    ...(env ? { otelEnvEndpoint: safeUrl(env) } : {}),
  }
}

/** Builds the report. Reads files; never contacts an upstream. */
export async function buildEvidence(config: Config): Promise<EvidenceReport> {
  const facts: EvidenceFacts = {
    identity: identityFacts(config),
    policy: policyFacts(config),
    lock: await lockFacts(config),
    audit: await auditFacts(config),
    telemetry: telemetryFacts(config),
  }
  const controls: Control[] = []

  // --- identity
  const id = facts.identity
  controls.push({
    id: 'IDN-1',
    domain: 'identity',
    control:
      'Callers are authenticated by verified JWTs (exact audience, asymmetric algorithms, required exp)',
    status: status(id.configured),
    evidence: id.configured
      ? [
          `identity config in ${config.file ? shown(config.file) : '(inline config)'}: audience ${id.audience}`,
          ...id.issuers.map(
            (i) => `issuer ${i.issuer}: keys ${i.keys} (${i.algorithms.join(', ')})`,
          ),
          `clock tolerance ${config.identity!.clockToleranceSeconds} s, token size cap ${config.identity!.maxTokenBytes} bytes`,
          ...(id.tenantClaim ? [`tenant claim: ${id.tenantClaim}`] : []),
          ...(id.localSubject ? [`local principal for run/stdio: ${id.localSubject}`] : []),
        ]
      : ['no identity: `sluice serve` refuses to start except with --insecure-dev on loopback'],
  })
  controls.push({
    id: 'IDN-2',
    domain: 'identity',
    control:
      'Workload identity: mTLS client certificates when serving TLS; upstreams get their own audience-bound credentials',
    status: status(config.gateway.tls?.requestClientCert === true, id.configured),
    evidence: [
      config.gateway.tls
        ? `TLS: cert ${shown(config.gateway.tls.certFile)}, client certificates ${config.gateway.tls.requestClientCert ? 'requested' : 'not requested'}`
        : 'TLS not configured (terminate TLS in front of the gateway)',
    ],
  })

  // --- access and privilege
  const pol = facts.policy
  const casesFailing = pol.caseFiles.some((c) => c.failed > 0 || c.error !== undefined)
  const policyEvidence = pol.loadError
    ? [`policies do not load: ${pol.loadError}`]
    : [
        ...(pol.files.length
          ? pol.files.map((f) => `policy file ${f}`)
          : ['no policy files: every configured tool is allowed (run/stdio only)']),
        ...pol.rules.map((r) => `rule ${r.id} (${r.effect}): ${r.when}`),
        ...pol.budgets.map((b) => `budget ${b}`),
        ...pol.caseFiles.map((c) =>
          c.error
            ? `case file ${c.file}: does not run: ${c.error}`
            : `case file ${c.file}: ${c.passed} passing, ${c.failed} failing`,
        ),
        ...(pol.files.length && pol.caseFiles.length === 0
          ? ['no case files (*.cases.yaml) beside the policies']
          : []),
      ]
  const policyOk = pol.files.length > 0 && pol.loadError === undefined
  controls.push({
    id: 'ACC-1',
    domain: 'access and privilege',
    control:
      'Every inner tool call is authorised by CEL policy with its arguments; deny by default; fail closed',
    status: policyOk ? (casesFailing ? 'partial' : 'enforced') : 'absent',
    evidence: policyEvidence,
  })
  const grants = Object.entries(config.servers).map(
    ([name, s]) => `${name}: ${s.credentials ? `${s.credentials.grant} grant` : 'no credentials'}`,
  )
  controls.push({
    id: 'ACC-2',
    domain: 'access and privilege',
    control:
      'Upstream credentials are granted per server, never passed through, never in the sandbox',
    status: 'enforced',
    evidence: grants.length ? grants : ['no servers configured'],
  })
  controls.push({
    id: 'ACC-3',
    domain: 'access and privilege',
    control: 'Least agency: per-execution limits on calls, concurrency, time, memory and sizes',
    status: 'enforced',
    evidence: Object.entries(config.limits).map(([k, v]) => `${k}: ${v}`),
  })

  // --- tool governance
  const lock = facts.lock
  const lockEvidence: string[] = []
  let lockStatus: ControlStatus = 'absent'
  if (lock.file === undefined) {
    lockEvidence.push(
      'no lock: live tool definitions are used as listed (rug pulls are not detected)',
    )
  } else if (lock.loadError) {
    lockEvidence.push(`lock ${lock.file} does not load: ${lock.loadError}`)
  } else {
    lockEvidence.push(
      `lock ${lock.file} (${lock.sha256}), generated ${lock.generatedAt}: ${lock.pinnedTools} pinned tools`,
      lock.signatureVerified
        ? `signature verified with ${shown(config.lock!.publicKeyFile!)}`
        : lock.signed
          ? 'lock is signed, but the signature is not checked (no publicKeyFile)'
          : 'lock is not signed',
      `unpinned tools ${lock.allowUnpinned ? 'exposed' : 'not exposed'}; changed tools quarantined`,
    )
    lockStatus = lock.signatureVerified ? 'enforced' : 'partial'
  }
  controls.push({
    id: 'TGV-1',
    domain: 'tool governance',
    control: 'Tool definitions are pinned (sha256) and signed; drift quarantines the tool',
    status: lockStatus,
    evidence: lockEvidence,
  })

  // --- observability
  const tel = facts.telemetry
  const exporting = tel.exporter !== 'none'
  controls.push({
    id: 'OBS-1',
    domain: 'observability',
    control:
      'A trace span per MCP request, per execution and per inner call (OpenTelemetry, allowlisted attributes)',
    status: status(exporting, true),
    evidence: [
      `trace exporter: ${tel.exporter}${tel.endpoint ? ` → ${tel.endpoint}` : ''}${tel.headerNames.length ? ` (headers: ${tel.headerNames.join(', ')})` : ''}`,
      ...(tel.otelEnvEndpoint
        ? [`OTEL_EXPORTER_OTLP_*ENDPOINT in this environment: ${tel.otelEnvEndpoint}`]
        : []),
      ...(exporting ? [] : ['spans are made but not exported (telemetry.exporter: none)']),
      `content capture: ${tel.captureContent ? 'ON (code, arguments and results recorded)' : 'off (hashes and sizes only)'}`,
    ],
  })
  controls.push({
    id: 'OBS-2',
    domain: 'observability',
    control:
      'Metrics: executions, inner calls by server/tool/outcome, decisions, approvals, sandbox pool, upstream health',
    status: 'enforced',
    evidence: ['GET /metrics on the gateway (Prometheus text exposition 0.0.4)'],
  })

  // --- input and output
  controls.push({
    id: 'IO-1',
    domain: 'input and output',
    control:
      'Arguments validated against the pinned input schema before policy; results and logs size-capped and redacted of granted secrets',
    status: 'enforced',
    evidence: [
      `maxArgsBytes ${config.limits.maxArgsBytes}, maxResultBytes ${config.limits.maxResultBytes}, maxOutputBytes ${config.limits.maxOutputBytes}, maxLogBytes ${config.limits.maxLogBytes}`,
    ],
  })
  controls.push({
    id: 'IO-2',
    domain: 'input and output',
    control: 'Model code runs in a fresh QuickJS WebAssembly instance with no ambient capability',
    status: 'enforced',
    evidence: [
      `timeoutMs ${config.limits.timeoutMs}, memoryBytes ${config.limits.memoryBytes}, stackBytes ${config.limits.stackBytes}`,
      'one WASM instance per execution; memories zeroed before reuse',
    ],
  })

  // --- integrity and recovery
  const audit = facts.audit
  const auditEvidence: string[] = []
  let auditStatus: ControlStatus = 'absent'
  if (audit.file === undefined) auditEvidence.push('no audit file configured')
  else {
    if (audit.files.length === 0) {
      auditEvidence.push(`${audit.file} (no records yet)`)
      auditStatus = 'enforced'
    } else if (audit.ok) {
      auditEvidence.push(
        `audit chain head: seq ${audit.lastSeq}, ${audit.head} (${audit.records} records in ${audit.files.join(', ')})`,
      )
      if (audit.lastCheckpoint)
        auditEvidence.push(
          `last signed checkpoint: seq ${audit.lastCheckpoint.seq}, ${audit.lastCheckpoint.hash}`,
        )
      auditStatus = 'enforced'
    } else {
      auditEvidence.push(`audit chain DOES NOT verify: ${audit.error}`)
      auditStatus = 'partial'
    }
    auditEvidence.push(
      `fsync per record: ${audit.fsync ? 'on' : 'off (a crash may lose the newest records)'}`,
      `signed checkpoints: ${audit.checkpointEvery ? `every ${audit.checkpointEvery} records` : 'off'}`,
    )
    if (auditStatus === 'enforced' && !audit.fsync) auditStatus = 'partial'
  }
  controls.push({
    id: 'INT-1',
    domain: 'integrity and recovery',
    control:
      'Every decision is written ahead to a hash-chained audit log; tampering is detectable (`sluice audit verify`)',
    status: auditStatus,
    evidence: auditEvidence,
  })

  // --- governance
  const approveRules = pol.rules.filter((r) => r.effect === 'approve')
  controls.push({
    id: 'GOV-1',
    domain: 'governance',
    control:
      'Policy as code: rules reviewed with case files that must pass in CI (`sluice policy test`)',
    status:
      pol.caseFiles.length > 0
        ? casesFailing
          ? 'partial'
          : 'enforced'
        : pol.files.length > 0
          ? 'partial'
          : 'absent',
    evidence: pol.caseFiles.length
      ? pol.caseFiles.map((c) =>
          c.error
            ? `${c.file}: does not run`
            : `${c.file}: ${c.passed} passing, ${c.failed} failing`,
        )
      : ['no case files'],
  })
  controls.push({
    id: 'GOV-2',
    domain: 'governance',
    control:
      'Human approval: calls matching `approve` rules wait for a human through MCP elicitation',
    status: status(approveRules.length > 0),
    evidence: approveRules.length
      ? [
          ...approveRules.map((r) => `approve rule ${r.id} (${r.file})`),
          `approval timeout ${config.gateway.approvalTimeoutMs} ms; decline, timeout and clients without elicitation → APPROVAL_DENIED, audited`,
        ]
      : ['no approve rules'],
  })

  const domains = CONTROL_DOMAINS.map((domain) => {
    const mine = controls.filter((c) => c.domain === domain)
    const worst = mine.reduce<ControlStatus>(
      (w, c) => (RANK[c.status] < RANK[w] ? c.status : w),
      'enforced',
    )
    return { domain, status: mine.length ? worst : 'absent', controls: mine.map((c) => c.id) }
  })
  return { generatedAt: new Date().toISOString(), config: config.file, domains, controls, facts }
}

const cell = (text: string) => text.replace(/\|/g, '\\|')

/** Renders the report as Markdown. */
export function renderEvidenceMarkdown(report: EvidenceReport): string {
  const lines = [
    '# sluice control evidence',
    '',
    `Generated ${report.generatedAt} from \`${report.config ?? '(default config)'}\`.`,
    '',
    '| domain | status | controls |',
    '|---|---|---|',
    ...report.domains.map((d) => `| ${d.domain} | ${d.status} | ${d.controls.join(', ')} |`),
    '',
    '| id | domain | control | status |',
    '|---|---|---|---|',
    ...report.controls.map((c) => `| ${c.id} | ${c.domain} | ${cell(c.control)} | ${c.status} |`),
    '',
  ]
  for (const c of report.controls) {
    lines.push(
      `## ${c.id} ${c.domain}: ${c.status}`,
      '',
      c.control,
      '',
      ...c.evidence.map((e) => `- ${oneLine(e)}`),
      '',
    )
  }
  return lines.join('\n')
}

export const evidenceCommand: Command = {
  name: 'evidence',
  summary:
    'Report which control enforces each zero-trust domain in this deployment (Markdown or JSON)',
  usage: 'sluice evidence [--config FILE] [--format md|json]',
  description:
    'Maps each zero-trust control domain to what enforces it in the given config (identity, policy, credentials, sandbox, audit, telemetry), with the evidence read from the config and the files it names.',
  examples: [
    'sluice evidence --config examples/demo/sluice.yaml',
    'sluice evidence --config sluice.yaml --format json',
  ],
  options: {
    config: { type: 'string', short: 'c' },
    format: { type: 'string', default: 'md' },
  },
  async run({ values }) {
    const format = values.format as string
    if (format !== 'md' && format !== 'json')
      throw usage(`--format: expected md or json, got ${format}`)
    const config = loadConfig(values.config as string | undefined)
    const report = await buildEvidence(config)
    process.stdout.write(
      format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderEvidenceMarkdown(report),
    )
    return 0
  },
}
