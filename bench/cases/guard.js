/**
 * Case `guard`: the cost of the PII and secret detectors (`detect()` from the built
 * `dist/src/guard/index.js`, every kind) per KiB of text, on (a) 10 KiB of benign JSON tool
 * output, (b) the same with 20 personal values and secrets mixed in, (c) 1 MiB of benign JSON.
 * The text is generated from a seeded PRNG (orders with ids, ISO timestamps, UUIDs, SHA-256s,
 * versions, amounts, URLs and a sentence of prose each), so every run reads the same bytes.
 * Target (issue 12): ≤ 10 µs per KiB, so a 10 KiB result adds ≤ 5% to a 1.5 ms execution.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { prng } from '../lib/catalogue.js'
import { SkipError } from '../lib/sluice.js'
import { summarize } from '../lib/stats.js'

export const title = 'guard: detect() per KiB of tool output, all kinds'

const GUARD_URL = new URL('../../dist/src/guard/index.js', import.meta.url)
const EXECUTION_MS = 1.5
const TARGET_US_PER_KIB = 10
const TARGET_SHARE = 0.05

const NOTES = [
  'Shipped from the Rotterdam warehouse, bay 12; expected within two working days.',
  'Customer asked to change the delivery window to the afternoon.',
  'Backordered: the supplier confirmed a new date after the holidays.',
  'Partial refund issued for the damaged item, see ticket history.',
  'Invoice regenerated after the VAT rate changed on 2026-07-01.',
]
const STATUS = ['open', 'paid', 'shipped', 'delivered', 'cancelled']

function hex(rand, n) {
  let s = ''
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16)
  return s
}

/** JSON of order records, at least `bytes` long, as a tool would return them. */
export function benignJson(bytes, seed = 7) {
  const rand = prng(seed)
  const rows = []
  let size = 2
  for (let i = 0; size < bytes; i++) {
    const id = hex(rand, 32)
    const row = JSON.stringify({
      id: `${id.slice(0, 8)}-${id.slice(8, 12)}-4${id.slice(13, 16)}-a${id.slice(17, 20)}-${id.slice(20)}`,
      order: `ORD-2026-${String(100000 + i).slice(1)}`,
      created: new Date(Date.UTC(2026, 11, 7, 8, 0, 0) + i * 61_000).toISOString(),
      status: STATUS[i % STATUS.length],
      total: Math.round(rand() * 100000) / 100,
      items: 1 + Math.floor(rand() * 9),
      sha256: hex(rand, 64),
      commit: hex(rand, 40),
      client: `web/${1 + (i % 4)}.${i % 10}.${i % 7}`,
      url: `https://shop.example.com/api/v2/orders/${100000 + i}?expand=items`,
      note: NOTES[i % NOTES.length],
    })
    rows.push(row)
    size += row.length + 1
  }
  return `[${rows.join(',')}]`
}

/** Fake values, one per line kind, mixed into the benign records' notes. */
const PII = [
  'jane.roe@example.com',
  '+1 (415) 555-2671',
  '4111 1111 1111 1111',
  'DE89 3704 0044 0532 0130 00',
  '078-05-1120',
  '192.0.2.44',
  '2001:db8::8a2e:370:7334',
  ['ghp', '_', 'R7vQ2mPx9Tk4Lw8nB3sYc6Jd1Hf5Gz0AeKuR7'].join(''),
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  'bob@example.org',
]

export function withPii(json, count) {
  const records = JSON.parse(json)
  for (let i = 0; i < count; i++) {
    const r = records[(i * 7) % records.length]
    r.note = `${r.note} Contact ${PII[i % PII.length]}.`
  }
  return JSON.stringify(records)
}

function perKiBSamples(detect, text, n) {
  const kib = text.length / 1024
  const samples = []
  for (let i = 0; i < n; i++) {
    const start = performance.now()
    detect(text)
    samples.push((performance.now() - start) / kib)
  }
  return samples
}

export async function run({ quick, progress }) {
  let guard
  try {
    guard = await import(GUARD_URL.href)
  } catch (error) {
    throw new SkipError(
      `dist/src/guard/index.js not loadable (${error.code ?? error.message}); run \`npm run build\``,
    )
  }
  const { detect } = guard
  const small = benignJson(10 * 1024)
  const mixed = withPii(benignJson(10 * 1024 - 600), 20)
  const large = benignJson(1024 * 1024, 11)
  // A benchmark of a detector that finds nothing measures nothing.
  const benignFound = detect(small).length + detect(large).length
  const mixedFound = detect(mixed).length
  if (benignFound !== 0) throw new Error(`benign text: ${benignFound} detections, expected 0`)
  if (mixedFound !== 20) throw new Error(`mixed text: ${mixedFound} detections, expected 20`)

  const rounds = quick ? 300 : 2000
  const largeRounds = quick ? 10 : 60
  for (let i = 0; i < 200; i++) {
    detect(small)
    detect(mixed)
  }
  const a = []
  const b = []
  for (let i = 0; i < rounds; i += 50) {
    // Alternate in blocks so that both see the same moments of a shared machine.
    a.push(...perKiBSamples(detect, small, 50))
    b.push(...perKiBSamples(detect, mixed, 50))
    if (i % 500 === 0) progress(`10 KiB ${i}/${rounds}`)
  }
  detect(large)
  const c = perKiBSamples(detect, large, largeRounds)
  const sa = summarize(a)
  const sb = summarize(b)
  const sc = summarize(c)
  const share = (sa.p50 * (small.length / 1024)) / EXECUTION_MS
  const usPerKiB = (s) => s.p50 * 1000
  return {
    metrics: [
      {
        label: 'per KiB, 10 KiB benign JSON',
        stats: sa,
        target: `≤ ${TARGET_US_PER_KIB} µs`,
        met: usPerKiB(sa) <= TARGET_US_PER_KIB,
      },
      {
        label: 'per KiB, 10 KiB JSON with 20 values to find',
        stats: sb,
        target: `≤ ${TARGET_US_PER_KIB} µs`,
        met: usPerKiB(sb) <= TARGET_US_PER_KIB,
      },
      {
        label: 'per KiB, 1 MiB benign JSON',
        stats: sc,
        target: `≤ ${TARGET_US_PER_KIB} µs`,
        met: usPerKiB(sc) <= TARGET_US_PER_KIB,
      },
      {
        label: `added to a ${EXECUTION_MS} ms execution returning 10 KiB (p50)`,
        value: `${(share * 100).toFixed(1)}%`,
        target: `≤ ${TARGET_SHARE * 100}%`,
        met: share <= TARGET_SHARE,
      },
    ],
    details: {
      unit: 'stats are milliseconds per KiB',
      bytes: { small: small.length, mixed: mixed.length, large: large.length },
      detections: { benign: benignFound, mixed: mixedFound },
      usPerKiB: { small: usPerKiB(sa), mixed: usPerKiB(sb), large: usPerKiB(sc) },
    },
  }
}
