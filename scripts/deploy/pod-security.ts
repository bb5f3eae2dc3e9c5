/**
 * The restricted Pod Security Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/)
 * on a pod template, plus a read-only root filesystem and no service account token, which the
 * standard leaves out and the gateway does not need.
 *
 * @module
 */
import type { IContainer, IPodSpec } from 'kubernetes-models/v1'

/** Volume sources the restricted profile admits. */
const RESTRICTED_VOLUMES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
])

function containerProblems(spec: IPodSpec, c: IContainer): string[] {
  const pod = spec.securityContext ?? {}
  const sc = c.securityContext ?? {}
  const at = `container ${c.name}`
  const problems: string[] = []
  if (sc.privileged === true) problems.push(`${at}: securityContext.privileged must not be true`)
  if (sc.allowPrivilegeEscalation !== false)
    problems.push(`${at}: securityContext.allowPrivilegeEscalation must be false`)
  if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true)
    problems.push(`${at}: runAsNonRoot must be true (in its or the pod's securityContext)`)
  if ((sc.runAsUser ?? pod.runAsUser) === 0) problems.push(`${at}: runAsUser must not be 0`)
  const seccomp = (sc.seccompProfile ?? pod.seccompProfile)?.type
  if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') {
    problems.push(
      `${at}: seccompProfile.type must be RuntimeDefault or Localhost (in its or the pod's securityContext)`,
    )
  }
  if (!(sc.capabilities?.drop ?? []).includes('ALL'))
    problems.push(`${at}: securityContext.capabilities.drop must include ALL`)
  for (const cap of sc.capabilities?.add ?? []) {
    if (cap !== 'NET_BIND_SERVICE')
      problems.push(
        `${at}: securityContext.capabilities.add may hold only NET_BIND_SERVICE, not ${cap}`,
      )
  }
  if (sc.readOnlyRootFilesystem !== true)
    problems.push(`${at}: securityContext.readOnlyRootFilesystem must be true`)
  for (const port of c.ports ?? []) {
    if (port.hostPort !== undefined)
      problems.push(`${at}: port ${port.containerPort} must not set hostPort`)
  }
  return problems
}

/** Every rule of the restricted profile `spec` breaks, one message each. */
export function podSecurityProblems(spec: IPodSpec): string[] {
  const problems: string[] = []
  for (const key of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec[key] === true) problems.push(`${key} must not be true`)
  }
  if (spec.securityContext?.runAsUser === 0)
    problems.push('securityContext.runAsUser must not be 0')
  if (spec.automountServiceAccountToken !== false) {
    problems.push(
      'automountServiceAccountToken must be false (the gateway does not call the Kubernetes API)',
    )
  }
  for (const volume of spec.volumes ?? []) {
    for (const type of Object.keys(volume).filter((k) => k !== 'name')) {
      if (!RESTRICTED_VOLUMES.has(type))
        problems.push(`volume ${volume.name}: ${type} volumes are not allowed`)
    }
  }
  const containers = [...(spec.initContainers ?? []), ...spec.containers]
  for (const c of containers) problems.push(...containerProblems(spec, c))
  return problems
}
