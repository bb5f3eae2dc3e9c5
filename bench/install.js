/**
 * `npm install` for the bench package, with `npm_config_nodedir` pointing at the running Node's
 * own headers when they are installed beside it (`<prefix>/include/node`). isolated-vm has no
 * reachable prebuilt binary here, so node-gyp compiles it, and without a nodedir node-gyp would
 * try to download the headers. isolated-vm is optional: if it still cannot build, the install
 * succeeds and the bench reports that peer as skipped.
 *
 * @module
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const env = { ...process.env }
const prefix = path.resolve(process.execPath, '..', '..')
if (
  !env.npm_config_nodedir &&
  fs.existsSync(path.join(prefix, 'include', 'node', 'node_version.h'))
) {
  env.npm_config_nodedir = prefix
}
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const r = spawnSync(npm, ['install', '--no-audit', '--no-fund'], {
  cwd: here,
  env,
  stdio: 'inherit',
})
process.exit(r.status ?? 1)
