/**
 * One registry entry (`server.json`) → one `servers:` entry of the config. Packages become a
 * command pinned to the exact version (npm → `npx -y pkg@1.2.3`, pypi → `uvx pkg==1.2.3`, oci →
 * `docker run -i --rm image:tag`); remotes become a `url` entry (`streamable-http` → `type: http`,
 * `sse` → `type: sse`) with URL template variables filled from the config. Secrets become
 * credential grants that say where the value comes from (`env:NAME` or `file:PATH`), never the
 * value: an `env` grant for a stdio server's variables, a `static` grant for a secret header.
 *
 * Anything that cannot be honoured is refused with the reason, naming the entry by its full
 * name and version: a package type sluice cannot start, a secret that would sit in an argument
 * or a URL, a variable the config does not fill.
 *
 * @module
 */
import { SERVER_NAME_PATTERN } from '../config/index.js'
import { SluiceError } from '../errors.js'
import type {
  KeyValueInput,
  RegistryArgument,
  RegistryEntry,
  RegistryInput,
  RegistryPackage,
  RegistryRemote,
  ServerDetail,
} from './server-json.js'

/** What the config says about one entry (`registry.variables` / `registry.secrets` of its name). */
export interface ImportOptions {
  /** The registry's base URL, recorded in `origin`. */
  registry: string
  variables?: Readonly<Record<string, string>>
  secrets?: Readonly<Record<string, string>>
}

/** One imported entry, ready to be written under `servers.<key>`. */
export interface ImportedServer {
  /** The config key: the last segment of the name (`io.github.acme/weather` → `weather`). */
  key: string
  name: string
  version: string
  /** The config entry, exactly as it is written. */
  entry: Record<string, unknown>
  /** How it runs, for the report: `npm @x/y@1.2.3`, `streamable-http https://…`. */
  via: string
}

/** Registry types sluice can start, with the command that starts them. */
export const RUNNABLE_PACKAGE_TYPES = ['npm', 'pypi', 'oci'] as const

const DEFAULT_BASE = {
  npm: 'https://registry.npmjs.org',
  pypi: 'https://pypi.org',
} as const

const VARIABLE = /\{([a-zA-Z_][a-zA-Z0-9_]*)\}/g

/** The config key of a registry name: its last segment, in the config's server-name alphabet. */
export function registryKey(name: string): string {
  return (name.split('/').pop() ?? name).replace(/[^A-Za-z0-9_-]/g, '-')
}

/** The default `valueFrom` of a secret: `env:` and the name in upper case, `-` and `.` as `_`. */
export function defaultSecretRef(name: string): string {
  return `env:${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`
}

class Refusal extends Error {}

/**
 * A registry's text, refused when it holds `${`: the config loader expands `${NAME}` from
 * sluice's own environment, so an entry could otherwise have a server started with any secret
 * of the gateway's (`--token=${AWS_SECRET_ACCESS_KEY}`). The config's own values may use it.
 */
function plain<T extends string | undefined>(text: T, what: string): T {
  if (text?.includes('${')) {
    throw new Refusal(
      `${what} contains "\${", which sluice would expand from its own environment; refused`,
    )
  }
  return text
}

/**
 * Turns one validated registry entry into a config entry.
 *
 * @throws SluiceError `REGISTRY_INVALID` naming the entry and every reason it cannot run here.
 */
export function importEntry(entry: RegistryEntry, options: ImportOptions): ImportedServer {
  const server = entry.server
  const id = `${server.name}@${server.version}`
  const key = registryKey(server.name)
  if (!SERVER_NAME_PATTERN.test(key)) {
    throw refused(
      id,
      [
        `its last segment does not make a server name (${SERVER_NAME_PATTERN}); rename it in the registry`,
      ],
      server,
    )
  }
  const reasons: string[] = []
  const vars = options.variables ?? {}
  const secrets = options.secrets ?? {}
  const origin = { registry: options.registry, name: server.name, version: server.version }
  const common = { description: server.title ?? server.description }
  // Packages first, then remotes: the first one that can run here is the entry.
  const candidates = [
    ...(server.packages ?? []).map((pkg, i) => ({
      what: `packages[${i}] (${pkg.registryType} ${pkg.identifier})`,
      map: () => fromPackage(server.name, pkg, vars, secrets),
    })),
    ...(server.remotes ?? []).map((remote, i) => ({
      what: `remotes[${i}] (${remote.type})`,
      map: () => fromRemote(server.name, remote, vars, secrets),
    })),
  ]
  for (const { what, map } of candidates) {
    try {
      const mapped = map()
      return {
        key,
        name: server.name,
        version: server.version,
        via: mapped.via,
        entry: { ...mapped.entry, ...common, origin },
      }
    } catch (cause) {
      if (!(cause instanceof Refusal)) throw cause
      reasons.push(`${what}: ${cause.message}`)
    }
  }
  if (reasons.length === 0)
    reasons.push('it has neither packages nor remotes: nothing to start or connect to')
  throw refused(id, reasons, server)
}

function refused(id: string, reasons: string[], server: ServerDetail): SluiceError {
  return new SluiceError(
    'REGISTRY_INVALID',
    `registry entry ${id} cannot be imported: ${reasons.join('; ')}`,
    {
      details: { name: server.name, version: server.version, reasons },
    },
  )
}

const variablesHint = (name: string, variable: string): string =>
  `set registry.variables["${name}"].${variable} in the config`

function fromPackage(
  name: string,
  pkg: RegistryPackage,
  vars: Readonly<Record<string, string>>,
  secrets: Readonly<Record<string, string>>,
): { entry: Record<string, unknown>; via: string } {
  if (pkg.transport.type !== 'stdio') {
    throw new Refusal(
      `its transport is ${pkg.transport.type}: sluice starts packages over stdio only (use the entry's remotes, or run it yourself and add its url)`,
    )
  }
  if (pkg.fileSha256 !== undefined && pkg.registryType !== 'mcpb') {
    // npx, uvx and docker check their own registries' integrity; a hash they cannot be given
    // would be a promise sluice does not keep.
    throw new Refusal(
      'it pins a fileSha256 that npx, uvx and docker cannot check; sluice will not drop it silently',
    )
  }
  plain(pkg.identifier, 'the package identifier')
  plain(pkg.registryBaseUrl, 'registryBaseUrl')
  const version = plain(pkg.version, 'the package version')
  const pinned = (why: string): never => {
    throw new Refusal(`it has no version: ${why}`)
  }
  const runtimeArgs = args(name, pkg.runtimeArguments ?? [], vars, 'runtimeArguments')
  const packageArgs = args(name, pkg.packageArguments ?? [], vars, 'packageArguments')
  const { env, grant } = environment(pkg.environmentVariables ?? [], vars, secrets)
  let command: string
  let argv: string[]
  switch (pkg.registryType) {
    case 'npm': {
      if (version === undefined) pinned('sluice runs npm packages pinned to an exact version')
      const registry =
        pkg.registryBaseUrl !== undefined &&
        pkg.registryBaseUrl.replace(/\/+$/, '') !== DEFAULT_BASE.npm
          ? ['--registry', pkg.registryBaseUrl]
          : []
      command = 'npx'
      argv = [
        '-y',
        ...registry,
        ...runtimeArgs.filter((a) => a !== '-y' && a !== '--yes'),
        `${pkg.identifier}@${version}`,
        ...packageArgs,
      ]
      break
    }
    case 'pypi': {
      if (version === undefined) pinned('sluice runs pypi packages pinned to an exact version')
      const index =
        pkg.registryBaseUrl !== undefined &&
        pkg.registryBaseUrl.replace(/\/+$/, '') !== DEFAULT_BASE.pypi
          ? ['--index-url', pkg.registryBaseUrl]
          : []
      command = 'uvx'
      argv = [...index, ...runtimeArgs, `${pkg.identifier}==${version}`, ...packageArgs]
      break
    }
    case 'oci': {
      // An image reference pins itself with a tag or digest; else the version is the tag.
      const tagged = /@sha256:[a-f0-9]{64}$/.test(pkg.identifier) || /:[^/]+$/.test(pkg.identifier)
      if (!tagged && version === undefined) pinned('an image needs a tag or digest')
      const image = tagged ? pkg.identifier : `${pkg.identifier}:${version}`
      // docker passes a variable into the container only when told its name.
      const passEnv = [...Object.keys(env), ...Object.keys(grant ?? {})].flatMap((k) => ['-e', k])
      command = 'docker'
      argv = ['run', '-i', '--rm', ...passEnv, ...runtimeArgs, image, ...packageArgs]
      break
    }
    default:
      throw new Refusal(
        `registry type ${pkg.registryType} cannot run here: sluice starts ${RUNNABLE_PACKAGE_TYPES.join(', ')} packages (npx, uvx, docker)${pkg.registryType === 'mcpb' ? '; an .mcpb bundle needs a bundle host' : ''}`,
      )
  }
  const entry: Record<string, unknown> = { command, args: argv }
  if (Object.keys(env).length > 0) entry.env = env
  if (grant !== undefined) entry.credentials = { grant: 'env', env: grant }
  const spec =
    pkg.registryType === 'oci'
      ? argv[argv.length - 1 - packageArgs.length]
      : `${pkg.identifier}@${version}`
  return { entry, via: `${pkg.registryType} ${spec}` }
}

function fromRemote(
  name: string,
  remote: RegistryRemote,
  vars: Readonly<Record<string, string>>,
  secrets: Readonly<Record<string, string>>,
): { entry: Record<string, unknown>; via: string } {
  const definitions = remote.variables ?? {}
  plain(remote.url, 'the URL')
  const url = remote.url.replace(VARIABLE, (_, variable: string) => {
    const def = definitions[variable]
    if (def?.isSecret === true) {
      throw new Refusal(
        `URL template variable {${variable}} is secret, and a URL is logged and pinned in the lock: sluice refuses secrets in URLs`,
      )
    }
    const value = vars[variable] ?? def?.value ?? def?.default
    if (value === undefined)
      throw new Refusal(
        `URL template variable {${variable}} is missing; ${variablesHint(name, variable)}`,
      )
    if (def?.choices !== undefined && def.choices.length > 0 && !def.choices.includes(value)) {
      throw new Refusal(
        `URL template variable {${variable}} must be one of ${def.choices.join(', ')}, not ${JSON.stringify(value)}`,
      )
    }
    return encodeURIComponent(value).replace(/%3A/gi, ':')
  })
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new Refusal('the URL with its variables filled is not an http(s) URL')
  }
  const headers: Record<string, string> = {}
  let credentials: Record<string, unknown> | undefined
  for (const header of remote.headers ?? []) {
    const secret = secretOf(header)
    if (secret !== undefined) {
      if (credentials !== undefined) {
        throw new Refusal(
          `headers ${String(credentials.header)} and ${header.name} are both secret: sluice grants one secret header per server`,
        )
      }
      credentials = {
        grant: 'static',
        header: header.name,
        valueFrom: secrets[header.name] ?? defaultSecretRef(header.name),
        ...(secret.prefix === '' ? {} : { prefix: secret.prefix }),
      }
      continue
    }
    const value = inputValue(header, header.name, vars)
    if (value === undefined) continue
    headers[header.name] = value === REQUIRED ? `\${${envName(header.name)}}` : value
  }
  const entry: Record<string, unknown> = { type: remote.type === 'sse' ? 'sse' : 'http', url }
  if (Object.keys(headers).length > 0) entry.headers = headers
  if (credentials !== undefined) entry.credentials = credentials
  return { entry, via: `${remote.type} ${url}` }
}

/** Non-secret variables go in `env` (a required one without a value as `${NAME}`); secret ones in a grant. */
function environment(
  variables: readonly KeyValueInput[],
  vars: Readonly<Record<string, string>>,
  secrets: Readonly<Record<string, string>>,
): { env: Record<string, string>; grant?: Record<string, string> } {
  const env: Record<string, string> = {}
  const grant: Record<string, string> = {}
  for (const variable of variables) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable.name)) {
      throw new Refusal(
        `environment variable ${JSON.stringify(variable.name.slice(0, 80))} is not a variable name`,
      )
    }
    if (secretOf(variable) !== undefined) {
      grant[variable.name] = secrets[variable.name] ?? defaultSecretRef(variable.name)
      continue
    }
    const value = inputValue(variable, variable.name, vars)
    if (value === undefined) continue
    // Taken from sluice's own environment when the config loads: an unset one stops the start
    // with its name, instead of a server that fails later without it.
    env[variable.name] = value === REQUIRED ? `\${${variable.name}}` : value
  }
  return Object.keys(grant).length > 0 ? { env, grant } : { env }
}

/** Command-line arguments; a secret one is refused (argv is visible to every process and pinned). */
function args(
  name: string,
  list: readonly RegistryArgument[],
  vars: Readonly<Record<string, string>>,
  field: string,
): string[] {
  const out: string[] = []
  for (const [i, arg] of list.entries()) {
    const label = arg.type === 'named' ? arg.name : (arg.valueHint ?? `${field}[${i}]`)
    if (secretOf(arg) !== undefined) {
      throw new Refusal(
        `argument ${label} is secret, and arguments are visible to every process and pinned in the lock: sluice passes secrets only in environment variables and headers`,
      )
    }
    const value = inputValue(arg, arg.type === 'named' ? arg.name : (arg.valueHint ?? ''), vars)
    if (value === REQUIRED)
      throw new Refusal(
        `argument ${label} is required and has no value; ${variablesHint(name, label)}`,
      )
    if (arg.type === 'named') {
      if (value === undefined) continue
      out.push(arg.name)
      // A named argument without a value is a flag (`--verbose`).
      if (value !== '' || arg.value !== undefined) out.push(value)
    } else if (value !== undefined) {
      out.push(value)
    }
  }
  return out
}

/** Marks a required input that the config did not fill. */
const REQUIRED = '\u0000required'

/**
 * The value of a non-secret input: the config's, else its own value with `{variables}` filled,
 * else its default; `REQUIRED` when it must be set and is not; undefined when optional and unset.
 */
function inputValue(
  input: RegistryInput & { variables?: Record<string, RegistryInput> },
  key: string,
  vars: Readonly<Record<string, string>>,
): string | undefined {
  const configured = key === '' ? undefined : vars[key]
  if (configured !== undefined) return configured
  plain(input.value, `the value of ${key || 'an argument'}`)
  plain(input.default, `the default of ${key || 'an argument'}`)
  if (input.value !== undefined) {
    let missing = false
    const filled = input.value.replace(VARIABLE, (whole, variable: string) => {
      const def = input.variables?.[variable]
      if (def === undefined) return whole
      const value = vars[variable] ?? plain(def.value ?? def.default, `variable {${variable}}`)
      if (value === undefined) missing = true
      return value ?? whole
    })
    return missing ? REQUIRED : filled
  }
  if (input.default !== undefined) return input.default
  return input.isRequired === true ? REQUIRED : undefined
}

/**
 * Whether an input carries a secret, and the fixed text before it (`Bearer ` of
 * `Bearer {token}`): the input is secret itself, or its value refers to a secret variable.
 */
function secretOf(
  input: RegistryInput & { variables?: Record<string, RegistryInput> },
): { prefix: string } | undefined {
  if (input.isSecret === true) return { prefix: '' }
  const value = input.value
  if (value === undefined) return undefined
  const secretVars = Object.entries(input.variables ?? {})
    .filter(([, v]) => v.isSecret === true)
    .map(([k]) => k)
  const match = [...value.matchAll(VARIABLE)].find((m) => secretVars.includes(m[1]!))
  if (match === undefined) return undefined
  const prefix = value.slice(0, match.index)
  if (match.index + match[0].length !== value.length || !/^(\S+ )?$/.test(prefix)) {
    throw new Refusal(
      `"${'name' in input ? String(input.name) : 'a value'}" mixes a secret with other text; sluice can only add a scheme word before it (Bearer {token})`,
    )
  }
  return { prefix }
}

function envName(header: string): string {
  return header.toUpperCase().replace(/[^A-Z0-9_]/g, '_')
}
