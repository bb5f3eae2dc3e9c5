/**
 * deploy/kubernetes, checked offline: the base loads, every object validates against its
 * Kubernetes schema and the cross-references hold; a bundle that breaks one rule gets exactly
 * that rule's message (and, where one mistake breaks several references, each of them).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IDeployment } from 'kubernetes-models/apps/v1'
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1'
import type { IConfigMap, IContainer, INamespace, IPodSpec, IService } from 'kubernetes-models/v1'
import { afterAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { loadBundle, type Bundle } from '../../scripts/deploy/bundle.js'
import { checkDeploy } from '../../scripts/deploy/check.js'
import { imageOf } from '../../scripts/deploy/dockerfile.js'
import { checkBundle } from '../../scripts/deploy/kubernetes.js'
import { ROOT } from '../helpers/runtime.js'

const DIR = join(ROOT, 'deploy', 'kubernetes')
const IMAGE = imageOf(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
const loaded = loadBundle(DIR)
const temps: string[] = []

afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true })
})

interface Kinds {
  Deployment: IDeployment
  Service: IService
  HorizontalPodAutoscaler: IHorizontalPodAutoscaler
  PodDisruptionBudget: IPodDisruptionBudget
  NetworkPolicy: INetworkPolicy
  Namespace: INamespace
  ConfigMap: IConfigMap & { data: Record<string, string> }
}

/** The parts of the gateway config the cases edit. */
interface RawConfig {
  identity?: { issuers: Array<{ jwksFile?: string }> }
  [key: string]: unknown
}

/** A copy of the bundle with `edit` applied to the object of `kind`. */
function mutated<K extends keyof Kinds>(kind: K, edit: (doc: Kinds[K]) => void): Bundle {
  const bundle = structuredClone(loaded.bundle)
  const m = bundle.manifests.find((x) => x.doc['kind'] === kind)
  if (m === undefined) throw new Error(`no ${kind}`)
  edit(m.doc as unknown as Kinds[K])
  return bundle
}

/** A value of the wrong type, written on purpose. */
const wrong = <T>(value: unknown): T => value as T

const pod = (d: IDeployment): IPodSpec => d.spec!.template.spec!
const container = (d: IDeployment): IContainer => pod(d).containers[0]!

/** Edits the gateway config inside the generated ConfigMap. */
function config(edit: (raw: RawConfig) => void): (cm: Kinds['ConfigMap']) => void {
  return (cm) => {
    const raw = parse(cm.data['sluice.yaml']!) as RawConfig
    edit(raw)
    cm.data['sluice.yaml'] = stringify(raw)
  }
}

const DEP = 'deployment.yaml: Deployment sluice'
const C = `${DEP}: container sluice`
const CFG = 'config /etc/sluice/sluice.yaml'

describe('deploy/kubernetes', () => {
  it('loads every resource and generated ConfigMap the kustomization names', () => {
    expect(loaded.problems).toEqual([])
    expect(loaded.bundle.manifests.map((m) => `${m.file} ${String(m.doc['kind'])}`)).toEqual([
      'namespace.yaml Namespace',
      'serviceaccount.yaml ServiceAccount',
      'deployment.yaml Deployment',
      'service.yaml Service',
      'hpa.yaml HorizontalPodAutoscaler',
      'pdb.yaml PodDisruptionBudget',
      'networkpolicy.yaml NetworkPolicy',
      'kustomization.yaml configMapGenerator sluice-config ConfigMap',
    ])
  })

  it('passes every check, together with the Dockerfile', () => {
    expect(checkBundle(loaded.bundle, IMAGE)).toEqual([])
    expect(checkDeploy(ROOT).problems).toEqual([])
  })
})

interface Case {
  rule: string
  bundle: Bundle
  /** Check without the Dockerfile, so that the container's own args count. */
  noImage?: boolean
  expected: string[]
}

const cases: Case[] = [
  // Schemas and the objects that must be there.
  {
    rule: 'a field of the wrong type',
    bundle: mutated('Deployment', (d) => {
      d.spec!.revisionHistoryLimit = wrong('five')
    }),
    expected: [`${DEP}: data/spec/revisionHistoryLimit must be integer`],
  },
  {
    rule: 'an object without a name',
    bundle: mutated('HorizontalPodAutoscaler', (d) => {
      delete d.metadata!.name
    }),
    expected: ['hpa.yaml: HorizontalPodAutoscaler (no name): metadata.name is required'],
  },
  {
    rule: 'a kind the check does not know',
    bundle: (() => {
      const b = structuredClone(loaded.bundle)
      b.manifests.push({ file: 'pod.yaml', doc: { apiVersion: 'v1', kind: 'Pod' } })
      return b
    })(),
    expected: ['pod.yaml: v1 Pod is not a kind this check knows'],
  },
  {
    rule: 'a missing PodDisruptionBudget',
    bundle: (() => {
      const b = structuredClone(loaded.bundle)
      b.manifests = b.manifests.filter((m) => m.doc['kind'] !== 'PodDisruptionBudget')
      return b
    })(),
    expected: ['kustomization.yaml: no PodDisruptionBudget among the resources'],
  },
  {
    rule: 'two Deployments',
    bundle: (() => {
      const b = structuredClone(loaded.bundle)
      const d = structuredClone(b.manifests.find((m) => m.doc['kind'] === 'Deployment')!)
      d.doc['metadata'] = { name: 'other' }
      b.manifests.push(d)
      return b
    })(),
    expected: ['kustomization.yaml: expected one Deployment, found 2'],
  },
  // Restricted Pod Security.
  {
    rule: 'runAsNonRoot unset',
    bundle: mutated('Deployment', (d) => {
      delete pod(d).securityContext!.runAsNonRoot
      delete container(d).securityContext!.runAsNonRoot
    }),
    expected: [
      `${DEP}: container sluice: runAsNonRoot must be true (in its or the pod's securityContext)`,
    ],
  },
  {
    rule: 'a container running as UID 0',
    bundle: mutated('Deployment', (d) => {
      container(d).securityContext!.runAsUser = 0
    }),
    expected: [`${DEP}: container sluice: runAsUser must not be 0`],
  },
  {
    rule: 'a pod running as UID 0',
    bundle: mutated('Deployment', (d) => {
      pod(d).securityContext!.runAsUser = 0
    }),
    expected: [
      `${DEP}: securityContext.runAsUser must not be 0`,
      `${DEP}: container sluice: runAsUser must not be 0`,
    ],
  },
  {
    rule: 'privilege escalation not ruled out',
    bundle: mutated('Deployment', (d) => {
      delete container(d).securityContext!.allowPrivilegeEscalation
    }),
    expected: [`${DEP}: container sluice: securityContext.allowPrivilegeEscalation must be false`],
  },
  {
    rule: 'a privileged container',
    bundle: mutated('Deployment', (d) => {
      container(d).securityContext!.privileged = true
    }),
    expected: [`${DEP}: container sluice: securityContext.privileged must not be true`],
  },
  {
    rule: 'capabilities kept',
    bundle: mutated('Deployment', (d) => {
      container(d).securityContext!.capabilities = { drop: ['NET_RAW'] }
    }),
    expected: [`${DEP}: container sluice: securityContext.capabilities.drop must include ALL`],
  },
  {
    rule: 'a capability added',
    bundle: mutated('Deployment', (d) => {
      container(d).securityContext!.capabilities!.add = ['SYS_ADMIN']
    }),
    expected: [
      `${DEP}: container sluice: securityContext.capabilities.add may hold only NET_BIND_SERVICE, not SYS_ADMIN`,
    ],
  },
  {
    rule: 'no seccomp profile',
    bundle: mutated('Deployment', (d) => {
      delete pod(d).securityContext!.seccompProfile
      delete container(d).securityContext!.seccompProfile
    }),
    expected: [
      `${DEP}: container sluice: seccompProfile.type must be RuntimeDefault or Localhost (in its or the pod's securityContext)`,
    ],
  },
  {
    rule: 'a writable root filesystem',
    bundle: mutated('Deployment', (d) => {
      container(d).securityContext!.readOnlyRootFilesystem = false
    }),
    expected: [`${DEP}: container sluice: securityContext.readOnlyRootFilesystem must be true`],
  },
  {
    rule: 'the host network',
    bundle: mutated('Deployment', (d) => {
      pod(d).hostNetwork = true
    }),
    expected: [`${DEP}: hostNetwork must not be true`],
  },
  {
    rule: 'a host port',
    bundle: mutated('Deployment', (d) => {
      container(d).ports![0]!.hostPort = 8787
    }),
    expected: [`${DEP}: container sluice: port 8787 must not set hostPort`],
  },
  {
    rule: 'a hostPath volume',
    bundle: mutated('Deployment', (d) => {
      pod(d).volumes!.push({ name: 'host', hostPath: { path: '/' } })
    }),
    expected: [`${DEP}: volume host: hostPath volumes are not allowed`],
  },
  {
    rule: 'a service account token mounted',
    bundle: mutated('Deployment', (d) => {
      delete pod(d).automountServiceAccountToken
    }),
    expected: [
      `${DEP}: automountServiceAccountToken must be false (the gateway does not call the Kubernetes API)`,
    ],
  },
  {
    rule: 'a namespace that does not enforce restricted',
    bundle: mutated('Namespace', (d) => {
      d.metadata!.labels!['pod-security.kubernetes.io/enforce'] = 'baseline'
    }),
    expected: [
      'namespace.yaml: Namespace sluice: label pod-security.kubernetes.io/enforce must be restricted',
    ],
  },
  // The Deployment and the image.
  {
    rule: 'one replica',
    bundle: mutated('Deployment', (d) => {
      d.spec!.replicas = 1
    }),
    expected: [
      `${DEP}: replicas must be at least 2, got 1`,
      'pdb.yaml: PodDisruptionBudget sluice: minAvailable 1 allows no eviction at 1 replicas (node drains would hang)',
    ],
  },
  {
    rule: "a selector that misses the template's labels",
    bundle: mutated('Deployment', (d) => {
      d.spec!.selector.matchLabels!['app.kubernetes.io/name'] = 'other'
    }),
    expected: [`${DEP}: spec.selector does not select the pod template's labels`],
  },
  {
    rule: "a command that replaces the image's ENTRYPOINT",
    bundle: mutated('Deployment', (d) => {
      container(d).command = ['sh', '-c', 'node /app/dist/src/main.js serve']
    }),
    expected: [
      `${C}: command ["sh","-c","node /app/dist/src/main.js serve"] replaces the image's ENTRYPOINT ["node","/app/dist/src/main.js"]`,
    ],
  },
  {
    rule: "args that differ from the image's CMD",
    bundle: mutated('Deployment', (d) => {
      container(d).args!.push('--public-url', 'https://mcp.example.com')
    }),
    expected: [
      `${C}: args ["serve","--config","/etc/sluice/sluice.yaml","--host","0.0.0.0","--port","8787","--public-url","https://mcp.example.com"] differ from the Dockerfile's CMD ["serve","--config","/etc/sluice/sluice.yaml","--host","0.0.0.0","--port","8787"]`,
    ],
  },
  {
    rule: 'args that do not run serve',
    noImage: true,
    bundle: mutated('Deployment', (d) => {
      container(d).args![0] = 'run'
    }),
    expected: [
      `${C}: args must run serve, got ["run","--config","/etc/sluice/sluice.yaml","--host","0.0.0.0","--port","8787"]`,
    ],
  },
  {
    rule: '--insecure-dev',
    noImage: true,
    bundle: mutated('Deployment', (d) => {
      container(d).args!.push('--insecure-dev')
    }),
    expected: [`${C}: --insecure-dev serves without authentication`],
  },
  {
    rule: 'a containerPort other than --port (and everything that names it)',
    bundle: mutated('Deployment', (d) => {
      container(d).ports![0]!.containerPort = 9000
    }),
    expected: [
      `${C}: serves on port 8787 (--port) but declares no such containerPort`,
      `${C}: readinessProbe probes port http, not the port sluice serves on (8787)`,
      `${C}: livenessProbe probes port http, not the port sluice serves on (8787)`,
      `${C}: startupProbe probes port http, not the port sluice serves on (8787)`,
      'service.yaml: Service sluice: port 8787 targets http, not the port sluice serves on (8787)',
      "networkpolicy.yaml: NetworkPolicy sluice: no ingress rule admits the gateway's port 8787",
    ],
  },
  {
    rule: 'readiness on /healthz',
    bundle: mutated('Deployment', (d) => {
      container(d).readinessProbe!.httpGet!.path = '/healthz'
    }),
    expected: [`${C}: readinessProbe must be an httpGet of /readyz`],
  },
  {
    rule: 'no liveness probe',
    bundle: mutated('Deployment', (d) => {
      delete container(d).livenessProbe
    }),
    expected: [`${C}: livenessProbe must be an httpGet of /healthz`],
  },
  {
    rule: 'a startup probe on another port',
    bundle: mutated('Deployment', (d) => {
      container(d).startupProbe!.httpGet!.port = 9000
    }),
    expected: [`${C}: startupProbe probes port 9000, not the port sluice serves on (8787)`],
  },
  {
    rule: 'a mount without a volume',
    bundle: mutated('Deployment', (d) => {
      pod(d).volumes!.find((v) => v.name === 'tmp')!.name = 'scratch'
    }),
    expected: [`${C}: volumeMount tmp names no volume`],
  },
  {
    rule: 'a ConfigMap volume of a ConfigMap not in the kustomization',
    bundle: mutated('Deployment', (d) => {
      pod(d).volumes!.find((v) => v.name === 'config')!.configMap!.name = 'other'
    }),
    expected: [
      `${DEP}: volume config: ConfigMap other is not among the resources`,
      `${C}: --config /etc/sluice/sluice.yaml: ConfigMap other is not among the resources`,
    ],
  },
  {
    rule: 'a service account not in the kustomization',
    bundle: mutated('Deployment', (d) => {
      pod(d).serviceAccountName = 'other'
    }),
    expected: [`${DEP}: serviceAccountName other is not among the resources`],
  },
  {
    rule: 'a grace period not above drainMs',
    bundle: mutated('Deployment', (d) => {
      pod(d).terminationGracePeriodSeconds = 25
    }),
    expected: [
      `${DEP}: terminationGracePeriodSeconds 25 must be above shutdown.drainMs (25000 ms), or the kubelet kills running executions`,
    ],
  },
  // The config in the ConfigMap, where the container finds it.
  {
    rule: '--config outside every mount',
    noImage: true,
    bundle: mutated('Deployment', (d) => {
      container(d).args![2] = '/opt/sluice.yaml'
    }),
    expected: [`${C}: --config /opt/sluice.yaml is on no volume mount`],
  },
  {
    rule: '--config naming no key of the ConfigMap',
    bundle: mutated('ConfigMap', (cm) => {
      cm.data['gateway.yaml'] = cm.data['sluice.yaml']!
      delete cm.data['sluice.yaml']
    }),
    expected: [
      `${C}: --config /etc/sluice/sluice.yaml: ConfigMap sluice-config has no key sluice.yaml`,
    ],
  },
  {
    rule: 'a config the gateway refuses',
    bundle: mutated(
      'ConfigMap',
      config((raw) => {
        raw['limits'] = { timeoutSeconds: 30 }
      }),
    ),
    expected: [`${CFG}: limits: unknown key "timeoutSeconds" (did you mean "timeoutMs"?)`],
  },
  {
    rule: 'no identity on 0.0.0.0',
    bundle: mutated(
      'ConfigMap',
      config((raw) => {
        delete raw['identity']
      }),
    ),
    expected: [`${CFG}: identity is required to serve on 0.0.0.0`],
  },
  {
    rule: 'no policies',
    bundle: mutated(
      'ConfigMap',
      config((raw) => {
        delete raw['policies']
      }),
    ),
    expected: [`${CFG}: policies are required by serve`],
  },
  {
    rule: 'a policy file the ConfigMap lacks',
    bundle: mutated(
      'ConfigMap',
      config((raw) => {
        raw['policies'] = ['policies/base.yaml']
      }),
    ),
    expected: [
      `${CFG}: policies[0] /etc/sluice/policies/base.yaml: ConfigMap sluice-config has no key policies/base.yaml`,
    ],
  },
  {
    rule: 'a JWKS file on no volume',
    bundle: mutated(
      'ConfigMap',
      config((raw) => {
        raw.identity!.issuers[0]!.jwksFile = '/etc/idp/jwks.json'
      }),
    ),
    expected: [
      `${CFG}: identity.issuers[0].jwksFile /etc/idp/jwks.json is on no volume of container sluice, and the image does not hold it`,
    ],
  },
  {
    rule: 'an upstream credential file on no volume',
    bundle: mutated(
      'ConfigMap',
      config((raw) => {
        raw['servers'] = {
          crm: {
            url: 'https://crm.example.com/mcp',
            credentials: {
              grant: 'static',
              header: 'Authorization',
              valueFrom: 'file:/secrets/crm',
            },
          },
        }
      }),
    ),
    expected: [
      `${CFG}: servers.crm.credentials.valueFrom /secrets/crm is on no volume of container sluice, and the image does not hold it`,
    ],
  },
  {
    rule: 'the audit on the read-only config volume',
    bundle: mutated(
      'ConfigMap',
      config((raw) => {
        raw['audit'] = { file: 'audit.jsonl' }
      }),
    ),
    expected: [
      `${CFG}: audit.file /etc/sluice/audit.jsonl must be on a writable volume (emptyDir or a persistent volume), not config`,
    ],
  },
  {
    rule: 'the audit volume mounted read-only',
    bundle: mutated('Deployment', (d) => {
      container(d).volumeMounts!.find((m) => m.name === 'audit')!.readOnly = true
    }),
    expected: [
      `${CFG}: audit.file /var/lib/sluice/audit.jsonl must be on a writable volume (emptyDir or a persistent volume), not audit`,
    ],
  },
  {
    rule: 'a drainMs the grace period does not cover',
    bundle: mutated(
      'ConfigMap',
      config((raw) => {
        raw['shutdown'] = { drainMs: 40000 }
      }),
    ),
    expected: [
      `${DEP}: terminationGracePeriodSeconds 35 must be above shutdown.drainMs (40000 ms), or the kubelet kills running executions`,
    ],
  },
  // The objects around the Deployment.
  {
    rule: 'a Service that selects other pods',
    bundle: mutated('Service', (s) => {
      s.spec!.selector!['app.kubernetes.io/component'] = 'other'
    }),
    expected: ["service.yaml: Service sluice: selector does not select the Deployment's pods"],
  },
  {
    rule: 'a Service that targets another port',
    bundle: mutated('Service', (s) => {
      s.spec!.ports![0]!.targetPort = 9000
    }),
    expected: [
      'service.yaml: Service sluice: port 8787 targets 9000, not the port sluice serves on (8787)',
    ],
  },
  {
    rule: 'a PodDisruptionBudget that selects other pods',
    bundle: mutated('PodDisruptionBudget', (p) => {
      p.spec!.selector!.matchLabels = { app: 'other' }
    }),
    expected: [
      "pdb.yaml: PodDisruptionBudget sluice: selector does not select the Deployment's pods",
    ],
  },
  {
    rule: 'a PodDisruptionBudget that allows no eviction',
    bundle: mutated('PodDisruptionBudget', (p) => {
      p.spec!.minAvailable = 2
    }),
    expected: [
      'pdb.yaml: PodDisruptionBudget sluice: minAvailable 2 allows no eviction at 2 replicas (node drains would hang)',
    ],
  },
  {
    rule: 'a PodDisruptionBudget with maxUnavailable 0',
    bundle: mutated('PodDisruptionBudget', (p) => {
      delete p.spec!.minAvailable
      p.spec!.maxUnavailable = 0
    }),
    expected: ['pdb.yaml: PodDisruptionBudget sluice: maxUnavailable 0 allows no eviction'],
  },
  {
    rule: 'an autoscaler of another Deployment',
    bundle: mutated('HorizontalPodAutoscaler', (h) => {
      h.spec!.scaleTargetRef.name = 'other'
    }),
    expected: [
      'hpa.yaml: HorizontalPodAutoscaler sluice: scaleTargetRef is apps/v1 Deployment other, not apps/v1 Deployment sluice',
    ],
  },
  {
    rule: 'an autoscaler that may go down to one replica',
    bundle: mutated('HorizontalPodAutoscaler', (h) => {
      h.spec!.minReplicas = 1
    }),
    expected: ['hpa.yaml: HorizontalPodAutoscaler sluice: minReplicas must be at least 2, got 1'],
  },
  {
    rule: 'an autoscaler with minReplicas above maxReplicas',
    bundle: mutated('HorizontalPodAutoscaler', (h) => {
      h.spec!.minReplicas = 20
    }),
    expected: ['hpa.yaml: HorizontalPodAutoscaler sluice: minReplicas 20 is above maxReplicas 10'],
  },
  {
    rule: 'cpu utilisation without a cpu request',
    bundle: mutated('Deployment', (d) => {
      delete container(d).resources!.requests!['cpu']
    }),
    expected: [
      'hpa.yaml: HorizontalPodAutoscaler sluice: scales on cpu utilization, but container sluice requests no cpu',
    ],
  },
  {
    rule: 'a NetworkPolicy for other pods',
    bundle: mutated('NetworkPolicy', (n) => {
      n.spec!.podSelector.matchLabels = { app: 'other' }
    }),
    expected: [
      "networkpolicy.yaml: NetworkPolicy sluice: podSelector does not select the Deployment's pods",
    ],
  },
  {
    rule: 'a NetworkPolicy that leaves egress open',
    bundle: mutated('NetworkPolicy', (n) => {
      n.spec!.policyTypes = ['Ingress']
    }),
    expected: [
      'networkpolicy.yaml: NetworkPolicy sluice: policyTypes must list Ingress and Egress (deny by default both ways)',
    ],
  },
  {
    rule: "a NetworkPolicy that shuts the gateway's port",
    bundle: mutated('NetworkPolicy', (n) => {
      n.spec!.ingress![0]!.ports = [{ port: 9000, protocol: 'TCP' }]
    }),
    expected: [
      "networkpolicy.yaml: NetworkPolicy sluice: no ingress rule admits the gateway's port 8787",
    ],
  },
  {
    rule: 'a kustomization namespace without its Namespace',
    bundle: (() => {
      const b = structuredClone(loaded.bundle)
      b.kustomization['namespace'] = 'gateway'
      return b
    })(),
    expected: ['kustomization.yaml: namespace gateway is not among the resources'],
  },
  {
    rule: 'an images entry for no container',
    bundle: (() => {
      const b = structuredClone(loaded.bundle)
      ;(b.kustomization['images'] as Array<{ name: string }>)[0]!.name = 'gateway'
      return b
    })(),
    expected: ['kustomization.yaml: images entry gateway matches no container image'],
  },
]

describe('a bundle that breaks a rule', () => {
  it.each(cases)('$rule', ({ bundle, noImage, expected }) => {
    expect(checkBundle(bundle, noImage === true ? undefined : IMAGE)).toEqual(expected)
  })

  it('takes an empty podSelector as every pod of the namespace, as Kubernetes does', () => {
    const bundle = mutated('NetworkPolicy', (n) => {
      n.spec!.podSelector = {}
    })
    expect(checkBundle(bundle, IMAGE)).toEqual([])
  })

  it('takes a PodDisruptionBudget without a selector as selecting no pod', () => {
    const bundle = mutated('PodDisruptionBudget', (p) => {
      delete p.spec!.selector
    })
    expect(checkBundle(bundle, IMAGE)).toEqual([
      "pdb.yaml: PodDisruptionBudget sluice: selector does not select the Deployment's pods",
    ])
  })
})

describe('a kustomization folder that does not load', () => {
  /** A copy of deploy/kubernetes to break. */
  function copy(): string {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-deploy-'))
    temps.push(dir)
    cpSync(DIR, dir, { recursive: true })
    return dir
  }

  it('names a resource file that does not exist', () => {
    const dir = copy()
    unlinkSync(join(dir, 'hpa.yaml'))
    expect(loadBundle(dir).problems).toEqual([
      'kustomization.yaml: resource hpa.yaml does not exist',
    ])
  })

  it('names a configMapGenerator file that does not exist', () => {
    const dir = copy()
    unlinkSync(join(dir, 'config', 'policy.yaml'))
    expect(loadBundle(dir).problems).toEqual([
      'kustomization.yaml: configMapGenerator sluice-config: file config/policy.yaml does not exist',
    ])
  })

  it('names a resource that is not YAML', () => {
    const dir = copy()
    writeFileSync(join(dir, 'pdb.yaml'), 'kind: [unclosed\n')
    expect(loadBundle(dir).problems).toEqual([
      expect.stringMatching(/^pdb\.yaml: not valid YAML: /),
    ])
  })

  it('refuses a file that is no kustomization', () => {
    const dir = copy()
    const text = readFileSync(join(dir, 'kustomization.yaml'), 'utf8')
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      text.replace('kind: Kustomization', 'kind: Component'),
    )
    expect(loadBundle(dir).problems).toEqual([
      'kustomization.yaml: expected apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization',
    ])
  })
})
