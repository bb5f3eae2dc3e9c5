/**
 * The README's "From a registry" example runs as written: the fixture registry it starts, the
 * config it shows, then every command of its second shell block in order, each with the exit
 * code its comment gives (0 when it names none). In a folder inside the project, as the
 * example's `cd .tmp/registry-demo` is, so `npx` finds the installed packages; HOME points at an
 * .npmrc that forbids the network.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import type { LockFile } from '../../src/registry/index.js'
import { runCli } from '../helpers/cli.js'
import { ROOT } from '../helpers/runtime.js'
// @ts-expect-error a plain .mjs fixture without types
import { startRegistry } from '../fixtures/registry/serve.mjs'

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
const start = readme.indexOf('### From a registry')
const section = readme.slice(start, readme.indexOf('\n### ', start + 1))
const blocks = (lang: string) =>
  [...section.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\\n\`\`\``, 'g'))].map((m) => m[1]!)

let dir: string
let registry: { url: string; close(): Promise<void> }
const saved = { cwd: process.cwd(), home: process.env.HOME }
beforeAll(async () => {
  mkdirSync(join(ROOT, '.tmp'), { recursive: true })
  dir = mkdtempSync(join(ROOT, '.tmp', 'readme-registry-'))
  writeFileSync(join(dir, '.npmrc'), 'offline=true\nregistry=http://127.0.0.1:9/\n')
  process.env.HOME = dir
  registry = await startRegistry()
  process.chdir(dir)
})
afterAll(async () => {
  process.chdir(saved.cwd)
  process.env.HOME = saved.home
  await registry?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('the README registry example', () => {
  it('starts the fixture registry on the port its config names', () => {
    const [setup] = blocks('sh')
    expect(setup).toContain('PORT=4873 node test/fixtures/registry/serve.mjs &')
    expect(blocks('yaml')[0]).toContain('url: http://127.0.0.1:4873')
  })

  it('runs every command with the exit code it says', async () => {
    writeFileSync(
      join(dir, 'sluice.yaml'),
      blocks('yaml')[0]!.replace('http://127.0.0.1:4873', registry.url),
    )
    const commands = blocks('sh')[1]!
      .split('\n')
      .filter((l) => l.trim() !== '')
    expect(commands.length).toBeGreaterThan(4)
    for (const line of commands) {
      const [command = '', comment = ''] = line.split(/\s+#\s+/)
      const expected = Number(/^exit (\d)/.exec(comment)?.[1] ?? 0)
      if (command.startsWith('sluice ')) {
        const out = await runCli(command.trim().split(/\s+/).slice(1))
        expect(out.code, `${command}\n${out.stderr}`).toBe(expected)
      } else {
        execFileSync('bash', ['-c', command], { cwd: dir, stdio: 'ignore' })
      }
    }
    const servers = (
      parseYaml(readFileSync(join(dir, 'sluice.yaml'), 'utf8')) as {
        servers: Record<string, { args: string[] }>
      }
    ).servers
    expect(servers['server-memory']!.args).toEqual([
      '-y',
      '@modelcontextprotocol/server-memory@2026.8.31',
    ])
    const lock = JSON.parse(readFileSync(join(dir, 'sluice.lock.json'), 'utf8')) as LockFile
    expect(lock.signature).toMatch(/^[\w-]+\.\.[\w-]+$/)
    expect(Object.keys(lock.servers).sort()).toEqual(['server-everything', 'server-memory'])
  })
})
