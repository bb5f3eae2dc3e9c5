/**
 * Each manifest against the Kubernetes OpenAPI schema of its kind (kubernetes-models). The
 * schemas check types, enums and required fields; like the API server without strict field
 * validation they let unknown fields through, which is why the rules that matter are checked by
 * name in pod-security.ts and kubernetes.ts.
 *
 * @module
 */
import { Deployment } from 'kubernetes-models/apps/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1'
import type { Manifest } from './bundle.js'

type Model = new (data: never) => { validate(): void }

/** The kinds this check knows, by `apiVersion/kind`. */
const MODELS: Record<string, Model> = {
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
}

/** `file: Kind name`, the prefix of every message about one object. */
export function where(m: Manifest): string {
  const meta = m.doc['metadata'] as { name?: unknown } | undefined
  return `${m.file}: ${String(m.doc['kind'])} ${String(meta?.name ?? '(no name)')}`
}

/** Schema problems of one manifest; empty when it validates. */
export function schemaProblems(m: Manifest): string[] {
  const key = `${String(m.doc['apiVersion'])}/${String(m.doc['kind'])}`
  const Model = MODELS[key]
  if (Model === undefined) {
    return [`${m.file}: ${key.replace(/\/([^/]+)$/, ' $1')} is not a kind this check knows`]
  }
  const problems: string[] = []
  const meta = m.doc['metadata'] as { name?: unknown } | undefined
  if (typeof meta?.name !== 'string' || meta.name === '')
    problems.push(`${where(m)}: metadata.name is required`)
  try {
    new Model(m.doc as never).validate()
  } catch (err) {
    problems.push(`${where(m)}: ${(err as Error).message}`)
  }
  return problems
}
