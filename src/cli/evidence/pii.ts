/**
 * IO-3, PII guardrails: `guardrails.pii` as read, the detectors' self-test on their probe strings
 * (passed in: the detectors live in src/guard), and the PII counts the audit records carry.
 *
 * @module
 */
import type { Config, Guardrails, PiiKind } from '../../config/index.js'
import { PII_KINDS } from '../../config/index.js'
import type { AuditFacts } from './audit.js'
import type { Control, ControlStatus, DetectorProbe, DetectorProbeResult } from './types.js'
import { configName, count, message } from './util.js'

/** Why IO-3 is not observed when no probe is given. */
export const NO_DETECTOR_PROBE = 'detectors unavailable'

export interface PiiFacts {
  /** Absent when `guardrails.pii` is not configured. */
  config?: NonNullable<Guardrails['pii']>
  /** The self-test's outcome for each detected kind (a kind it did not report counts as missed). */
  probe?: DetectorProbeResult[]
  /** Why there is no `probe`. */
  notProbed?: string
}

export function piiFacts(config: Config, detectorProbe: DetectorProbe | undefined): PiiFacts {
  const pii = config.guardrails.pii
  if (pii === undefined || pii.mode === 'off') return pii ? { config: pii } : {}
  if (detectorProbe === undefined) return { config: pii, notProbed: NO_DETECTOR_PROBE }
  const kinds = new Set<PiiKind>(pii.detect)
  try {
    const results = detectorProbe(kinds)
    if (results.length === 0) return { config: pii, notProbed: 'the self-test reported no kind' }
    const byKind = new Map(results.map((r) => [r.kind, r]))
    const probe = pii.detect.map(
      (kind) => byKind.get(kind) ?? { kind, found: false, nearMissIgnored: false },
    )
    return { config: pii, probe }
  } catch (cause) {
    return { config: pii, notProbed: `the self-test failed: ${message(cause)}` }
  }
}

function status(facts: PiiFacts): ControlStatus {
  if (facts.config === undefined || facts.config.mode === 'off') return 'absent'
  if (facts.probe === undefined) return 'not-observed'
  return facts.probe.every((r) => r.found && r.nearMissIgnored) ? 'enforced' : 'partial'
}

function probeSummary(facts: PiiFacts): string {
  if (facts.probe === undefined) return `detectors not probed: ${facts.notProbed}`
  const n = facts.probe.length
  const found = facts.probe.filter((r) => r.found).length
  const ignored = facts.probe.filter((r) => r.nearMissIgnored).length
  return `ran the detectors on a probe string: ${found}/${n} kinds found, ${ignored}/${n} near misses ignored`
}

function auditSummary(audit: AuditFacts): string {
  if (audit.file === undefined) return 'no audit file: PII counts not observed'
  const kinds = Object.entries(audit.pii.byKind)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${k} ${count(n)}`)
  return `counted ${count(audit.pii.records)} audit records, ${count(audit.pii.withPii)} with pii counts${kinds.length ? ` (${kinds.join(', ')})` : ''}`
}

function settingLines(pii: NonNullable<Guardrails['pii']>, shared: boolean): string[] {
  const skipped = PII_KINDS.filter((k) => !pii.detect.includes(k))
  return [
    pii.mode !== 'tokenize'
      ? 'mode redact: values become [EMAIL]; nothing is kept'
      : shared
        ? `mode tokenize: values become stable tokens ([EMAIL_1]) kept in the vault in Redis shared by every replica, AES-256-GCM under ${pii.vaultKeyFrom ?? 'no key'}, for ${pii.ttlSeconds} s (at most ${count(pii.maxValuesPerSession)} per session)`
        : `mode tokenize: values become stable tokens ([EMAIL_1]) kept in a vault for ${pii.ttlSeconds} s (at most ${count(pii.maxValuesPerSession)} per session, ${count(pii.maxValues)} in all)`,
    `detect: ${pii.detect.join(', ')}${skipped.length ? ` (not detected: ${skipped.join(', ')})` : ''}`,
    `boundary ${pii.boundary}: ${pii.boundary === 'guest' ? 'upstream results before the guest sees them, and what reaches the model' : 'result, logs and errors that reach the model'}`,
    pii.resolveFor.length
      ? `resolveFor: ${pii.resolveFor.join(', ')} (these tools' arguments get the real values of the caller's tokens, before policy)`
      : 'resolveFor: none (tokens never become values again)',
  ]
}

export function piiControl(config: Config, facts: PiiFacts, audit: AuditFacts): Control {
  const pii = facts.config
  const on = pii !== undefined && pii.mode !== 'off'
  const missed = (facts.probe ?? []).flatMap((r) => [
    ...(r.found ? [] : [`detector probe: ${r.kind} NOT found`]),
    ...(r.nearMissIgnored ? [] : [`detector probe: a near miss of ${r.kind} was flagged`]),
  ])
  return {
    id: 'IO-3',
    domain: 'input and output',
    control:
      'PII and secrets on their way to the model are detected and tokenised (or redacted); tokens resolve only for resolveFor tools',
    status: status(facts),
    observed: `read guardrails.pii in ${configName(config)}${on ? `; ${probeSummary(facts)}` : ''}; ${auditSummary(audit)}`,
    evidence: on
      ? [
          ...settingLines(pii, config.store.redis !== undefined),
          probeSummary(facts),
          ...missed,
          auditSummary(audit),
        ]
      : [
          pii
            ? 'guardrails.pii.mode: off'
            : 'guardrails.pii not configured: values reach the model as they are',
          auditSummary(audit),
        ],
  }
}
