/**
 * Start-up failures as a client sees them (issue 13): the built CLI with a broken config writes
 * one line to stderr naming file, path, what was expected and the key that was probably meant,
 * and exits 2, for `stdio` (also under a real MCP SDK client that spawned it), `serve` and
 * `run`; `audit verify` on a missing file says so; and every command's `--help` has a
 * description and an example.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { oneLine } from '../../src/cli/index.js'
import { CONNECT_TIMEOUT_MS } from '../../src/cli/upstreams.js'
import { ROOT } from '../helpers/runtime.js'

const MAIN = join(ROOT, 'dist', 'src', 'main.js')
let dir: string

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
  dir = mkdtempSync(join(tmpdir(), 'sluice-startup-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function write(name: string, text: string): string {
  const file = join(dir, name)
  writeFileSync(file, text)
  return file
}

function sluice(args: string[], input = '') {
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    cwd: dir,
    input,
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const BROKEN = 'servers:\n  memory:\n    comand: node\nlimits: { timeoutSeconds: 3 }\n'

function expectedLine(command: string, file: string): string {
  return (
    `sluice ${command}: CONFIG_INVALID: invalid config ${file}: ` +
    'servers.memory: unknown key "comand" (did you mean "command"?); ' +
    'limits: unknown key "timeoutSeconds" (did you mean "timeoutMs"?)\n'
  )
}

describe('a config that does not load', () => {
  it('stops stdio, serve and run with one line on stderr and exit 2', () => {
    const file = write('broken.yaml', BROKEN)
    for (const command of ['stdio', 'serve', 'run']) {
      const out = sluice([command, '--config', file, ...(command === 'run' ? ['-'] : [])])
      expect(out.status, command).toBe(2)
      expect(out.stderr, command).toBe(expectedLine(command, file))
      expect(out.stdout, command).toBe('')
    }
  })

  it('reaches a real MCP client that spawned `sluice stdio`: connect fails, stderr says why', async () => {
    const file = write('broken-client.yaml', BROKEN)
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [MAIN, 'stdio', '--config', file],
      cwd: dir,
      stderr: 'pipe',
    })
    let stderr = ''
    transport.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString('utf8')
    })
    const exited = new Promise<void>((resolve) => {
      transport.onclose = () => resolve()
    })
    const client = new Client({ name: 'startup-test', version: '0.0.1' })
    await expect(client.connect(transport)).rejects.toThrow()
    await exited
    expect(stderr).toBe(expectedLine('stdio', file))
    await client.close().catch(() => undefined)
  })

  it('names a missing config file in one line', () => {
    const file = join(dir, 'nope.yaml')
    const out = sluice(['stdio', '--config', file])
    expect(out.status).toBe(2)
    expect(out.stderr).toBe(
      `sluice stdio: CONFIG_INVALID: invalid config ${file}: file not found\n`,
    )
  })

  it('puts a policy that does not parse on one line, without the code frame', () => {
    const policy = write(
      'bad-policy.yaml',
      'rules:\n  - id: x\n    effect: allow\n    when: "tool.name =="\n',
    )
    const file = write('with-policy.yaml', `policies: [${policy}]\n`)
    const out = sluice(['stdio', '--config', file])
    expect(out.status).toBe(2)
    expect(out.stderr).toBe(
      `sluice stdio: POLICY_INVALID: invalid policy ${policy}: rules[0].when (id "x"): does not parse: Unexpected token: EOF at line 1, column 13\n`,
    )
  })
})

describe('a start that fails after the servers were spawned', () => {
  /** Processes whose command line holds `marker` (Linux /proc). */
  function running(marker: string): number[] {
    return readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker)
        } catch {
          return false // gone meanwhile
        }
      })
      .map(Number)
  }

  // The servers start before the policies are checked (they boot while the gateway loads). A
  // server that never answers `initialize` and ignores the end of its stdin must still be
  // stopped, at once rather than after the connect timeout, and no process may outlive sluice.
  it.each(['stdio', 'serve', 'run'])(
    '%s: a policy that does not parse stops it with one line, exit 2, and no server left',
    (command) => {
      const marker = `sluice-startup-mute-${command}-${process.pid}`
      const policy = write(
        'bad-policy-mute.yaml',
        'rules:\n  - id: x\n    effect: allow\n    when: "tool.name =="\n',
      )
      const file = write(
        `mute-${command}.yaml`,
        [
          'servers:',
          '  mute:',
          `    command: ${JSON.stringify(process.execPath)}`,
          `    args: ['-e', 'setInterval(() => {}, 1000)', '${marker}']`,
          `policies: [${policy}]`,
          '',
        ].join('\n'),
      )
      const args = { stdio: [], serve: ['--insecure-dev', '--port', '0'], run: ['-'] }[command]!
      const started = Date.now()
      const out = sluice([command, '--config', file, ...args])
      expect(Date.now() - started).toBeLessThan(CONNECT_TIMEOUT_MS)
      expect(out.status).toBe(2)
      expect(out.stderr).toBe(
        `sluice ${command}: POLICY_INVALID: invalid policy ${policy}: rules[0].when (id "x"): does not parse: Unexpected token: EOF at line 1, column 13\n`,
      )
      expect(running(marker)).toEqual([])
    },
  )
})

describe('oneLine', () => {
  it('joins a header and its items, and every group, with "; "', () => {
    expect(
      oneLine(
        'invalid policy a.yaml:\n  - r1: bad\n  - r2: worse\ninvalid policy b.yaml:\n  - r3: x',
      ),
    ).toBe('invalid policy a.yaml: r1: bad; r2: worse; invalid policy b.yaml: r3: x')
    expect(oneLine('plain message')).toBe('plain message')
  })
})

describe('sluice audit verify', () => {
  it('says "no such file" for a missing file, exit 2', () => {
    const missing = join(dir, 'nope.jsonl')
    const out = sluice(['audit', 'verify', missing])
    expect(out).toMatchObject({ status: 2, stderr: `sluice audit: no such file: ${missing}\n` })
  })

  it('says "no such file" for a missing --public-key, and what it expected of a bad one', () => {
    const audit = write('empty.jsonl', '')
    const key = join(dir, 'missing.jwk.json')
    expect(sluice(['audit', 'verify', audit, '--public-key', key])).toMatchObject({
      status: 2,
      stderr: `sluice audit: no such file: ${key}\n`,
    })
    const bad = write('bad.jwk.json', '[1]')
    expect(sluice(['audit', 'verify', audit, '--public-key', bad])).toMatchObject({
      status: 2,
      stderr: `sluice audit: --public-key: ${bad} is not a JSON JWK (expected an object such as {"kty":"EC",…})\n`,
    })
  })
})

describe('--help', () => {
  const top = sluice(['--help'])
  const names = [...top.stdout.matchAll(/^ {2}([a-z]+) {2,}\S/gm)].map((m) => m[1]!)

  it('lists every command, and gives an example itself', () => {
    expect(top.status).toBe(0)
    expect(names).toEqual([
      'run',
      'serve',
      'stdio',
      'lock',
      'bindings',
      'policy',
      'audit',
      'token',
      'evidence',
      'config',
      'registry',
    ])
    expect(top.stdout).toContain('Example:\n  echo "return 6 * 7" | sluice run -\n')
  })

  it('of every command has a description and an example that runs that command', () => {
    for (const name of names) {
      for (const args of [
        [name, '--help'],
        ['help', name],
      ]) {
        const out = sluice(args)
        expect(out.status, args.join(' ')).toBe(0)
        const description = /\nDescription:\n((?: {2}\S.*\n)+)/.exec(out.stdout)?.[1] ?? ''
        expect(description.trim().length, `${name}: description`).toBeGreaterThan(80)
        const examples = /\nExamples?:\n((?: {2}.*\n)+)/.exec(out.stdout)?.[1] ?? ''
        expect(examples, `${name}: example`).toMatch(new RegExp(`sluice ${name}\\b`))
        expect(out.stdout, name).toContain(`Usage: sluice ${name}`)
      }
    }
  })
})
