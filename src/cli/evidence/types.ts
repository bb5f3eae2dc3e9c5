/**
 * The shapes of a `sluice evidence` report. The JSON output is exactly {@link EvidenceReport}.
 *
 * @module
 */
import type { PiiKind } from '../../config/index.js'

/**
 * `enforced`: a check ran and the control holds. `partial`: it ran and the control holds only in
 * part. `absent`: the config switches the control off. `not-observed`: nothing could be checked
 * (a probe unavailable or failing to run), so the report makes no claim either way.
 */
export type ControlStatus = 'enforced' | 'partial' | 'not-observed' | 'absent'

/** Weakest first: a domain takes the lowest rank among its controls. */
export const STATUS_RANK: Readonly<Record<ControlStatus, number>> = {
  absent: 0,
  'not-observed': 1,
  partial: 2,
  enforced: 3,
}

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
  /** What was looked at to reach `status`: a config read, a file parsed, a probe run, records counted. */
  observed: string
  evidence: string[]
}

/** One domain's verdict: the weakest status of its controls. */
export interface DomainSummary {
  domain: ControlDomain
  status: ControlStatus
  controls: string[]
}

/** One kind's outcome in the PII detectors' self-test (`selfTest` of src/guard). */
export interface DetectorProbeResult {
  kind: PiiKind
  found: boolean
  nearMissIgnored: boolean
}

/** Runs the PII detectors on their probe strings, for the kinds the config detects. */
export type DetectorProbe = (kinds: ReadonlySet<PiiKind>) => DetectorProbeResult[]
