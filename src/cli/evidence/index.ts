/**
 * `sluice evidence` as a library: gathers the facts (config read, files parsed, signatures
 * checked, probes run against the real modules, audit records counted), then maps them to the
 * controls of each zero-trust domain, one small function per domain. A control reports only what
 * its facts show, or `not-observed` when nothing could be checked.
 *
 * @module
 */
import type { Config } from '../../config/index.js'
import { accessDomain, credentialFacts, type CredentialFacts } from './access.js'
import { auditFacts, integrityDomain, type AuditFacts } from './audit.js'
import { governanceDomain } from './governance.js'
import { identityDomain, identityFacts, type IdentityFacts } from './identity.js'
import { ioDomain, ioFacts, type IoFacts } from './io.js'
import {
  metricsFacts,
  observabilityDomain,
  telemetryFacts,
  type MetricsFacts,
  type TelemetryFacts,
} from './observability.js'
import { policyFacts, type PolicyFacts } from './policy.js'
import { probeSandbox, type SandboxFacts, type SandboxProbe } from './sandbox.js'
import { riskControl, riskFacts, type RiskFacts } from './risk.js'
import { toolsDomain, lockFacts, type LockFacts } from './tools.js'
import {
  CONTROL_DOMAINS,
  STATUS_RANK,
  type Control,
  type ControlStatus,
  type DetectorProbe,
  type DomainSummary,
} from './types.js'

export { renderEvidenceMarkdown } from './render.js'
export { CONTROL_DOMAINS, STATUS_RANK } from './types.js'
export type {
  Control,
  ControlDomain,
  ControlStatus,
  DetectorProbe,
  DetectorProbeResult,
  DomainSummary,
} from './types.js'
export { NO_DETECTOR_PROBE } from './pii.js'
export {
  AMBIENT_GLOBALS,
  MAX_PROBED_TOOL_CALLS,
  TIMEOUT_PROBE_MS,
  probeSandbox,
} from './sandbox.js'
export { PII_RECORD_TYPES } from './audit.js'
export { REQUIRED_METRICS } from './observability.js'
export type { SandboxFacts, SandboxProbe } from './sandbox.js'

/** The facts the controls are built from, as data (the JSON report's `facts`). */
export interface EvidenceFacts {
  identity: IdentityFacts
  policy: PolicyFacts
  lock: LockFacts
  risk: RiskFacts
  audit: AuditFacts
  telemetry: TelemetryFacts
  credentials: CredentialFacts
  metrics: MetricsFacts
  sandbox: SandboxFacts
  io: IoFacts
}

export interface EvidenceReport {
  generatedAt: string
  config: string | undefined
  domains: DomainSummary[]
  controls: Control[]
  facts: EvidenceFacts
}

export interface EvidenceOptions {
  /** The PII detectors' self-test; without it IO-3 is `not-observed` ("detectors unavailable"). */
  detectorProbe?: DetectorProbe
  /** Default: {@link probeSandbox}, a real one-worker pool. */
  sandboxProbe?: SandboxProbe
}

function summarise(controls: readonly Control[]): DomainSummary[] {
  return CONTROL_DOMAINS.map((domain) => {
    const mine = controls.filter((c) => c.domain === domain)
    const worst = mine.reduce<ControlStatus>(
      (w, c) => (STATUS_RANK[c.status] < STATUS_RANK[w] ? c.status : w),
      'enforced',
    )
    return { domain, status: mine.length ? worst : 'absent', controls: mine.map((c) => c.id) }
  })
}

/** Builds the report. Reads files and runs probes in-process; never contacts an upstream. */
export async function buildEvidence(
  config: Config,
  options: EvidenceOptions = {},
): Promise<EvidenceReport> {
  const { facts: lock, lock: lockFile } = await lockFacts(config)
  const policy = policyFacts(config)
  const facts: EvidenceFacts = {
    identity: identityFacts(config),
    policy,
    lock,
    risk: riskFacts(lockFile, policy.rules),
    audit: await auditFacts(config),
    telemetry: telemetryFacts(config),
    credentials: credentialFacts(config),
    metrics: metricsFacts(),
    sandbox: await (options.sandboxProbe ?? probeSandbox)(config),
    io: ioFacts(config, lockFile, options),
  }
  const controls = [
    ...identityDomain(config, facts.identity),
    ...accessDomain(config, facts.policy, facts.credentials, facts.sandbox),
    ...toolsDomain(config, facts.lock),
    riskControl(
      facts.risk,
      `read the risk scores pinned in ${facts.lock.file ?? 'the lock (none configured)'} and the \`when\` of ${facts.policy.rules.length} policy rules`,
    ),
    ...observabilityDomain(config, facts.telemetry, facts.metrics),
    ...ioDomain(config, facts.io, facts.sandbox, facts.audit),
    ...integrityDomain(facts.audit),
    ...governanceDomain(config, facts.policy),
  ]
  return {
    generatedAt: new Date().toISOString(),
    config: config.file,
    domains: summarise(controls),
    controls,
    facts,
  }
}
