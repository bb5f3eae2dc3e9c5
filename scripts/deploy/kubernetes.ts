/**
 * The kustomize base in deploy/kubernetes, checked offline: every object against its schema,
 * restricted Pod Security on the Deployment, and the references between the objects, the
 * Dockerfile's command and the gateway config in the ConfigMap (labels and selectors, ports,
 * probes, mounts and the paths the config names, grace period and drain time).
 *
 * @module
 */
import { posix } from 'node:path'
import type { IDeployment } from 'kubernetes-models/apps/v1'
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1'
import type {
  IConfigMap,
  IContainer,
  INamespace,
  IPodSpec,
  IService,
  IVolume,
  IVolumeMount,
} from 'kubernetes-models/v1'
import { parse as parseYaml } from 'yaml'
import { parseConfig, type Config } from '../../src/config/index.js'
import type { Bundle, Manifest } from './bundle.js'
import { flagValue, type ImageSpec } from './dockerfile.js'
import { podSecurityProblems } from './pod-security.js'
import { schemaProblems, where } from './schema.js'

const REQUIRED_KINDS = [
  'Namespace',
  'ServiceAccount',
  'Deployment',
  'Service',
  'HorizontalPodAutoscaler',
  'PodDisruptionBudget',
  'NetworkPolicy',
  'ConfigMap',
]
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])
/** Volume sources the gateway can write to. */
const WRITABLE_VOLUMES = ['emptyDir', 'persistentVolumeClaim', 'ephemeral'] as const
/** `sluice serve`'s default port and Kubernetes' default grace period. */
const DEFAULT_PORT = 8787
const DEFAULT_GRACE_SECONDS = 30

/** The gateway's container in the Deployment, with what the other checks refer to. */
export interface Workload {
  manifest: Manifest
  spec: IPodSpec
  container: IContainer
  labels: Record<string, string>
  replicas: number
  /** The arguments the container runs with: its own, or the image's CMD. */
  args: string[]
  port: number
  configMaps: Map<string, Record<string, string>>
}

/** Where a path inside the container lands: the mount and volume holding it. */
export interface Placement {
  mount: IVolumeMount
  volume: IVolume
  /** The path inside the volume. */
  rel: string
}

const ofKind = (bundle: Bundle, kind: string): Manifest[] =>
  bundle.manifests.filter((m) => m.doc['kind'] === kind)

const nameOf = (m: Manifest): string =>
  String((m.doc['metadata'] as { name?: unknown } | undefined)?.name)

const same = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
  JSON.stringify(a) === JSON.stringify(b)

/**
 * Whether `matchLabels` picks pods with `labels`. An empty selector picks every pod of the
 * namespace for a NetworkPolicy or PodDisruptionBudget (`emptyIsAll`), none for a Service.
 * matchExpressions are not evaluated.
 */
function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
  emptyIsAll = false,
): boolean {
  const entries = Object.entries(selector ?? {})
  if (entries.length === 0) return emptyIsAll
  return entries.every(([k, v]) => labels[k] === v)
}

/** A port given by number or by the container port's name. */
function resolvePort(c: IContainer, port: string | number | undefined): number | undefined {
  if (typeof port === 'number') return port
  return c.ports?.find((p) => p.name === port)?.containerPort
}

/** The volume mounted where `path` lives in the container (the deepest mount wins). */
export function placementOf(w: Workload, path: string): Placement | undefined {
  const mount = (w.container.volumeMounts ?? [])
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0]
  const volume = mount && w.spec.volumes?.find((v) => v.name === mount.name)
  if (mount === undefined || volume === undefined) return undefined
  return { mount, volume, rel: posix.relative(mount.mountPath, path) }
}

/** The text of `path` when a ConfigMap volume holds it, else a reason it does not. */
function configMapFile(w: Workload, p: Placement): { text: string } | { problem: string } {
  const ref = p.volume.configMap
  if (ref === undefined) return { problem: `volume ${p.volume.name} is no ConfigMap` }
  const data = w.configMaps.get(ref.name ?? '')
  if (data === undefined) return { problem: `ConfigMap ${ref.name} is not among the resources` }
  const key = ref.items === undefined ? p.rel : ref.items.find((i) => i.path === p.rel)?.key
  const text = key === undefined ? undefined : data[key]
  return text === undefined
    ? { problem: `ConfigMap ${ref.name} has no key ${key ?? p.rel}` }
    : { text }
}

function workloadOf(
  bundle: Bundle,
  m: Manifest,
  image: ImageSpec | undefined,
): Workload | undefined {
  const dep = m.doc as unknown as IDeployment
  const spec = dep.spec?.template.spec
  const container = spec?.containers.find((c) => c.name === 'sluice') ?? spec?.containers[0]
  if (spec === undefined || container === undefined) return undefined
  const args = container.args ?? image?.cmd ?? []
  const configMaps = new Map(
    ofKind(bundle, 'ConfigMap').map((c) => [
      nameOf(c),
      (c.doc as unknown as IConfigMap).data ?? {},
    ]),
  )
  return {
    manifest: m,
    spec,
    container,
    labels: dep.spec?.template.metadata?.labels ?? {},
    replicas: dep.spec?.replicas ?? 1,
    args,
    port: Number(flagValue(args, 'port') ?? DEFAULT_PORT),
    configMaps,
  }
}

function commandProblems(w: Workload, image: ImageSpec | undefined): string[] {
  const c = w.container
  const at = `${where(w.manifest)}: container ${c.name}`
  const problems: string[] = []
  if (image !== undefined && c.command !== undefined && !same(c.command, image.entrypoint)) {
    problems.push(
      `${at}: command ${JSON.stringify(c.command)} replaces the image's ENTRYPOINT ${JSON.stringify(image.entrypoint)}`,
    )
  }
  if (image !== undefined && c.args !== undefined && !same(c.args, image.cmd)) {
    problems.push(
      `${at}: args ${JSON.stringify(c.args)} differ from the Dockerfile's CMD ${JSON.stringify(image.cmd)}`,
    )
  }
  if (w.args[0] !== 'serve')
    problems.push(`${at}: args must run serve, got ${JSON.stringify(w.args)}`)
  if (w.args.includes('--insecure-dev'))
    problems.push(`${at}: --insecure-dev serves without authentication`)
  if (!(c.ports ?? []).some((p) => p.containerPort === w.port))
    problems.push(`${at}: serves on port ${w.port} (--port) but declares no such containerPort`)
  return problems
}

function probeProblems(w: Workload): string[] {
  const c = w.container
  const at = `${where(w.manifest)}: container ${c.name}`
  const problems: string[] = []
  const probes = [
    ['readinessProbe', '/readyz', true],
    ['livenessProbe', '/healthz', true],
    ['startupProbe', '/healthz', false],
  ] as const
  for (const [name, path, required] of probes) {
    const probe = c[name]
    if (probe === undefined && !required) continue
    const get = probe?.httpGet
    if (get === undefined || get.path !== path) {
      problems.push(`${at}: ${name} must be an httpGet of ${path}`)
      continue
    }
    if (resolvePort(c, get.port) !== w.port)
      problems.push(
        `${at}: ${name} probes port ${get.port}, not the port sluice serves on (${w.port})`,
      )
  }
  return problems
}

function mountProblems(w: Workload, bundle: Bundle): string[] {
  const at = where(w.manifest)
  const problems: string[] = []
  for (const m of w.container.volumeMounts ?? []) {
    if (!w.spec.volumes?.some((v) => v.name === m.name))
      problems.push(`${at}: container ${w.container.name}: volumeMount ${m.name} names no volume`)
  }
  for (const v of w.spec.volumes ?? []) {
    const name = v.configMap?.name
    if (name !== undefined && v.configMap?.optional !== true && !w.configMaps.has(name))
      problems.push(`${at}: volume ${v.name}: ConfigMap ${name} is not among the resources`)
  }
  const account = w.spec.serviceAccountName
  if (account !== undefined && !ofKind(bundle, 'ServiceAccount').some((s) => nameOf(s) === account))
    problems.push(`${at}: serviceAccountName ${account} is not among the resources`)
  return problems
}

/** Every file the config names, by its key in the config. */
function configPaths(config: Config): Array<[string, string]> {
  const out: Array<[string, string | undefined]> = [
    ...(config.policies ?? []).map((p, i): [string, string] => [`policies[${i}]`, p]),
    ['lock.file', config.lock?.file],
    ['lock.publicKeyFile', config.lock?.publicKeyFile],
    ...(config.identity?.issuers ?? []).map((i, n): [string, string | undefined] => [
      `identity.issuers[${n}].jwksFile`,
      i.jwksFile,
    ]),
    ['audit.signingKeyFile', config.audit?.signingKeyFile],
    ['gateway.signingKeyFile', config.gateway.signingKeyFile],
    ['gateway.tls.certFile', config.gateway.tls?.certFile],
    ['gateway.tls.keyFile', config.gateway.tls?.keyFile],
    ['gateway.tls.caFile', config.gateway.tls?.caFile],
  ]
  const fileRef = (key: string, ref: string | undefined): [string, string | undefined] => [
    key,
    ref?.startsWith('file:') ? posix.resolve(config.baseDir, ref.slice(5)) : undefined,
  ]
  out.push(fileRef('gateway.actorTokenFrom', config.gateway.actorTokenFrom))
  for (const [name, server] of Object.entries(config.servers)) {
    const grant = server.credentials
    if (grant?.grant === 'static')
      out.push(fileRef(`servers.${name}.credentials.valueFrom`, grant.valueFrom))
    if (grant?.grant === 'token-exchange')
      out.push(fileRef(`servers.${name}.credentials.clientSecretFrom`, grant.clientSecretFrom))
  }
  return out.filter((e): e is [string, string] => e[1] !== undefined)
}

/** The gateway config the container reads, parsed as `sluice serve` would. */
export function configOf(w: Workload): { file: string; config?: Config; problems: string[] } {
  const file = flagValue(w.args, 'config')
  const at = `${where(w.manifest)}: container ${w.container.name}`
  if (file === undefined) return { file: '', problems: [`${at}: args give no --config`] }
  const placed = placementOf(w, file)
  if (placed === undefined)
    return { file, problems: [`${at}: --config ${file} is on no volume mount`] }
  const read = configMapFile(w, placed)
  if ('problem' in read) return { file, problems: [`${at}: --config ${file}: ${read.problem}`] }
  try {
    return {
      file,
      config: parseConfig(parseYaml(read.text), file, posix.dirname(file)),
      problems: [],
    }
  } catch (err) {
    // The loader's own list, without its "invalid config FILE:" heading.
    const listed = (err as { details?: { problems?: unknown } }).details?.problems
    const messages = Array.isArray(listed) ? listed.map(String) : [(err as Error).message]
    return { file, problems: messages.map((m) => `config ${file}: ${m}`) }
  }
}

function configProblems(w: Workload): string[] {
  const { file, config, problems } = configOf(w)
  if (config === undefined) return problems
  const at = `config ${file}`
  const host = flagValue(w.args, 'host') ?? '127.0.0.1'
  if (!LOOPBACK.has(host) && config.identity === undefined)
    problems.push(`${at}: identity is required to serve on ${host}`)
  if ((config.policies ?? []).length === 0) problems.push(`${at}: policies are required by serve`)
  const files: Array<[string, string]> = [...configPaths(config)]
  if (config.audit !== undefined) files.push(['audit.file', config.audit.file])
  for (const [key, path] of files) {
    const placed = placementOf(w, path)
    if (placed === undefined) {
      problems.push(
        `${at}: ${key} ${path} is on no volume of container ${w.container.name}, and the image does not hold it`,
      )
      continue
    }
    if (key === 'audit.file') {
      const writable =
        placed.mount.readOnly !== true &&
        WRITABLE_VOLUMES.some((t) => placed.volume[t] !== undefined)
      if (!writable) {
        problems.push(
          `${at}: audit.file ${path} must be on a writable volume (emptyDir or a persistent volume), not ${placed.volume.name}`,
        )
      }
    } else if (placed.volume.configMap !== undefined) {
      const read = configMapFile(w, placed)
      if ('problem' in read) problems.push(`${at}: ${key} ${path}: ${read.problem}`)
    }
  }
  const grace = w.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS
  if (grace * 1000 <= config.shutdown.drainMs) {
    problems.push(
      `${where(w.manifest)}: terminationGracePeriodSeconds ${grace} must be above shutdown.drainMs (${config.shutdown.drainMs} ms), or the kubelet kills running executions`,
    )
  }
  return problems
}

function serviceProblems(w: Workload, m: Manifest): string[] {
  const spec = (m.doc as unknown as IService).spec ?? {}
  const problems: string[] = []
  if (!selects(spec.selector, w.labels))
    problems.push(`${where(m)}: selector does not select the Deployment's pods`)
  for (const port of spec.ports ?? []) {
    const target = port.targetPort ?? port.port
    if (resolvePort(w.container, target) !== w.port)
      problems.push(
        `${where(m)}: port ${port.port} targets ${target}, not the port sluice serves on (${w.port})`,
      )
  }
  return problems
}

function disruptionProblems(w: Workload, m: Manifest): string[] {
  const spec = (m.doc as unknown as IPodDisruptionBudget).spec ?? {}
  const problems: string[] = []
  if (spec.selector === undefined || !selects(spec.selector.matchLabels, w.labels, true))
    problems.push(`${where(m)}: selector does not select the Deployment's pods`)
  if (typeof spec.minAvailable === 'number' && spec.minAvailable >= w.replicas) {
    problems.push(
      `${where(m)}: minAvailable ${spec.minAvailable} allows no eviction at ${w.replicas} replicas (node drains would hang)`,
    )
  }
  if (spec.maxUnavailable === 0) problems.push(`${where(m)}: maxUnavailable 0 allows no eviction`)
  return problems
}

function autoscalerProblems(w: Workload, m: Manifest): string[] {
  const spec = (m.doc as unknown as IHorizontalPodAutoscaler).spec
  if (spec === undefined) return []
  const problems: string[] = []
  const target = spec.scaleTargetRef
  const name = nameOf(w.manifest)
  if (target.kind !== 'Deployment' || target.apiVersion !== 'apps/v1' || target.name !== name) {
    problems.push(
      `${where(m)}: scaleTargetRef is ${target.apiVersion} ${target.kind} ${target.name}, not apps/v1 Deployment ${name}`,
    )
  }
  const min = spec.minReplicas ?? 1
  if (min < 2) problems.push(`${where(m)}: minReplicas must be at least 2, got ${min}`)
  if (min > spec.maxReplicas)
    problems.push(`${where(m)}: minReplicas ${min} is above maxReplicas ${spec.maxReplicas}`)
  for (const metric of spec.metrics ?? []) {
    const resource = metric.resource?.name
    if (resource === undefined) continue
    if (w.container.resources?.requests?.[resource] === undefined) {
      problems.push(
        `${where(m)}: scales on ${resource} utilization, but container ${w.container.name} requests no ${resource}`,
      )
    }
  }
  return problems
}

function networkProblems(w: Workload, m: Manifest): string[] {
  const spec = (m.doc as unknown as INetworkPolicy).spec ?? { podSelector: {} }
  const problems: string[] = []
  if (!selects(spec.podSelector.matchLabels, w.labels, true))
    problems.push(`${where(m)}: podSelector does not select the Deployment's pods`)
  const types = spec.policyTypes ?? []
  if (!types.includes('Ingress') || !types.includes('Egress'))
    problems.push(
      `${where(m)}: policyTypes must list Ingress and Egress (deny by default both ways)`,
    )
  const admits = (spec.ingress ?? []).some(
    (rule) =>
      rule.ports === undefined ||
      rule.ports.some((p) => p.port === undefined || resolvePort(w.container, p.port) === w.port),
  )
  if (!admits) problems.push(`${where(m)}: no ingress rule admits the gateway's port ${w.port}`)
  return problems
}

function kustomizationProblems(bundle: Bundle, w: Workload): string[] {
  const problems: string[] = []
  const k = bundle.kustomization
  const namespaces = ofKind(bundle, 'Namespace')
  for (const ns of namespaces) {
    const labels = (ns.doc as unknown as INamespace).metadata?.labels ?? {}
    if (labels['pod-security.kubernetes.io/enforce'] !== 'restricted')
      problems.push(`${where(ns)}: label pod-security.kubernetes.io/enforce must be restricted`)
  }
  const namespace = k['namespace']
  if (typeof namespace === 'string' && !namespaces.some((ns) => nameOf(ns) === namespace))
    problems.push(`kustomization.yaml: namespace ${namespace} is not among the resources`)
  const images = Array.isArray(k['images']) ? (k['images'] as Array<{ name?: unknown }>) : []
  const containerImages = [...(w.spec.initContainers ?? []), ...w.spec.containers].map(
    (c) => c.image?.replace(/[@:].*$/, '') ?? '',
  )
  for (const image of images) {
    if (!containerImages.includes(String(image.name)))
      problems.push(
        `kustomization.yaml: images entry ${String(image.name)} matches no container image`,
      )
  }
  return problems
}

/** Every problem of the bundle, one message each; empty when it is fit to apply. */
export function checkBundle(bundle: Bundle, image?: ImageSpec): string[] {
  const problems = bundle.manifests.flatMap(schemaProblems)
  for (const kind of REQUIRED_KINDS) {
    if (ofKind(bundle, kind).length === 0)
      problems.push(`kustomization.yaml: no ${kind} among the resources`)
  }
  const deployments = ofKind(bundle, 'Deployment')
  if (deployments.length !== 1) {
    if (deployments.length > 1)
      problems.push(`kustomization.yaml: expected one Deployment, found ${deployments.length}`)
    return problems
  }
  const d = deployments[0]!
  const w = workloadOf(bundle, d, image)
  if (w === undefined) return [...problems, `${where(d)}: spec.template.spec has no container`]
  const dep = d.doc as unknown as IDeployment
  if (!selects(dep.spec?.selector.matchLabels, w.labels))
    problems.push(`${where(d)}: spec.selector does not select the pod template's labels`)
  if (w.replicas < 2) problems.push(`${where(d)}: replicas must be at least 2, got ${w.replicas}`)
  problems.push(
    ...podSecurityProblems(w.spec).map((p) => `${where(d)}: ${p}`),
    ...commandProblems(w, image),
    ...probeProblems(w),
    ...mountProblems(w, bundle),
    ...configProblems(w),
    ...kustomizationProblems(bundle, w),
    ...ofKind(bundle, 'Service').flatMap((m) => serviceProblems(w, m)),
    ...ofKind(bundle, 'PodDisruptionBudget').flatMap((m) => disruptionProblems(w, m)),
    ...ofKind(bundle, 'HorizontalPodAutoscaler').flatMap((m) => autoscalerProblems(w, m)),
    ...ofKind(bundle, 'NetworkPolicy').flatMap((m) => networkProblems(w, m)),
  )
  return problems
}

/** The gateway's workload, for callers that lay the container out (the entrypoint test). */
export function workload(bundle: Bundle, image?: ImageSpec): Workload {
  const d = ofKind(bundle, 'Deployment')[0]
  const w = d && workloadOf(bundle, d, image)
  if (w === undefined) throw new Error('the bundle has no Deployment with a container')
  return w
}
