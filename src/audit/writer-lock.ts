/**
 * One writer per audit chain, across processes: a lock file beside the live file.
 *
 * `<file>.lock` is created with O_EXCL and holds who wrote it (pid, host, start time, a random
 * token). While held, its mtime is refreshed every {@link REFRESH_MS}. A lock is stale, and taken
 * over, when its holder is on this host and its pid is gone (a crash: recovered at once), or when
 * it has not been refreshed for {@link STALE_MS} (a holder on another host that died, e.g. on a
 * shared volume). Taking over renames the stale file aside and creates a new one with O_EXCL, so
 * of two processes that race for a stale lock exactly one wins.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises'

/** How often a holder touches its lock. */
export const REFRESH_MS = 5_000
/** A lock not touched for this long is stale, whoever holds it. */
export const STALE_MS = 30_000

/** Who holds a lock, as its file says. */
export interface LockHolder {
  pid: number
  host: string
  /** ISO time the holder took the lock. */
  since: string
}

interface LockFile extends LockHolder {
  token: string
}

export interface WriterLock {
  readonly path: string
  /** Stops refreshing and removes the lock file, if it is still ours. */
  release(): Promise<void>
}

export type LockResult =
  { ok: true; lock: WriterLock } | { ok: false; holder: LockHolder | undefined }

/** Takes the writer lock of `file`, or says who holds it. */
export async function lockWriter(file: string): Promise<LockResult> {
  const path = `${file}.lock`
  for (let attempt = 0; attempt < 3; attempt++) {
    const mine: LockFile = {
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
      token: randomBytes(12).toString('hex'),
    }
    try {
      const handle = await open(path, 'wx')
      try {
        await handle.writeFile(`${JSON.stringify(mine)}\n`)
        await handle.sync()
      } finally {
        await handle.close()
      }
      return { ok: true, lock: held(path, mine.token) }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = await readHolder(path)
    if (!(await isStale(path, holder))) return { ok: false, holder }
    // Aside, not deleted: of two racers only one rename succeeds, and the evidence stays.
    await rename(path, `${path}.stale-${randomBytes(6).toString('hex')}`).catch(() => undefined)
  }
  return { ok: false, holder: await readHolder(path) }
}

function held(path: string, token: string): WriterLock {
  const now = () => new Date()
  const timer = setInterval(() => {
    void utimes(path, now(), now()).catch(() => undefined)
  }, REFRESH_MS)
  timer.unref()
  let released = false
  return {
    path,
    async release() {
      if (released) return
      released = true
      clearInterval(timer)
      const holder = await readRaw(path)
      if (holder?.token === token) await unlink(path).catch(() => undefined)
    },
  }
}

async function readRaw(path: string): Promise<LockFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockFile>
    if (
      typeof parsed.pid !== 'number' ||
      typeof parsed.host !== 'string' ||
      typeof parsed.token !== 'string'
    ) {
      return undefined
    }
    return {
      pid: parsed.pid,
      host: parsed.host,
      since: String(parsed.since ?? ''),
      token: parsed.token,
    }
  } catch {
    return undefined
  }
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  const raw = await readRaw(path)
  return raw === undefined ? undefined : { pid: raw.pid, host: raw.host, since: raw.since }
}

async function isStale(path: string, holder: LockHolder | undefined): Promise<boolean> {
  if (holder !== undefined && holder.host === hostname() && !alive(holder.pid)) return true
  try {
    return Date.now() - (await stat(path)).mtimeMs > STALE_MS
  } catch {
    // Gone meanwhile: the next attempt creates it.
    return true
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, as another user's process.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** "pid 123 on host-a since 2026-12-04T21:00:00.000Z", for messages. */
export function describeHolder(holder: LockHolder | undefined): string {
  return holder === undefined
    ? 'another process'
    : `pid ${holder.pid} on ${holder.host} since ${holder.since}`
}
