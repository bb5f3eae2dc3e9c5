// TEMPORARY stand-in until the detectors land (branch `detect`): email only.
import type { PiiKind } from '../config/index.js'

export interface Detection {
  kind: PiiKind
  start: number
  end: number
}

export function detect(text: string, kinds?: ReadonlySet<PiiKind>): Detection[] {
  if (kinds !== undefined && !kinds.has('email')) return []
  const out: Detection[] = []
  for (const m of text.matchAll(/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g)) {
    out.push({ kind: 'email', start: m.index, end: m.index + m[0].length })
  }
  return out
}
