/**
 * The api_key rules one by one: provider prefixes, and what keeps common high-entropy text
 * (digests, ids, certificates, public keys, cursors) from being called a secret.
 */
import { createHash, randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { detect } from '../../src/guard/index.js'

function keys(text: string): string[] {
  return detect(text, new Set(['api_key'])).map((d) => text.slice(d.start, d.end))
}

/** A fixed base62 body, built from parts so that no scanner takes this file for a leak. */
const BODY = ['R7vQ2mPx9Tk4', 'Lw8nB3sYc6Jd', '1Hf5Gz0AeKuX', 'p3Wq7Ny2Vb6M'].join('')
const HEX64 = createHash('sha256').update('sluice').digest('hex')

describe('api_key: provider prefixes', () => {
  const cases: Array<[string, string]> = [
    ['OpenAI project', `sk-proj-${BODY}`],
    ['OpenAI', `sk-${BODY}`],
    ['Anthropic', `sk-ant-api03-${BODY}${BODY}`],
    ['GitHub classic', `ghp_${BODY.slice(0, 36)}`],
    ['GitHub OAuth', `gho_${BODY.slice(0, 36)}`],
    ['GitHub user-to-server', `ghu_${BODY.slice(0, 36)}`],
    ['GitHub server', `ghs_${BODY.slice(0, 36)}`],
    ['GitHub refresh', `ghr_${BODY.slice(0, 36)}`],
    ['GitHub fine-grained', `github_pat_${BODY.slice(0, 22)}_${BODY}`],
    ['Slack bot', `xoxb-2417934568-4189732160514-${BODY.slice(0, 24)}`],
    ['Slack user', `xoxp-2417934568-4189732160514-${BODY.slice(0, 24)}`],
    ['AWS access key id', 'AKIAIOSFODNN7EXAMPLE'],
    ['AWS session key id', 'ASIAY34FZKBOKMUTVV7A'],
    ['Google', `AIza${BODY.slice(0, 35)}`],
    ['Stripe live secret', `sk_live_${BODY.slice(0, 24)}`],
    ['Stripe restricted', `rk_live_${BODY.slice(0, 24)}`],
    ['Stripe publishable', `pk_live_${BODY.slice(0, 24)}`],
    ['Stripe test', `sk_test_${BODY.slice(0, 24)}`],
    ['GitLab', `glpat-${BODY.slice(0, 20)}`],
    ['npm', `npm_${BODY.slice(0, 36)}`],
    ['Hugging Face', `hf_${BODY.slice(0, 34)}`],
    ['SendGrid', `SG.${BODY.slice(0, 22)}.${BODY.slice(0, 43)}`],
    ['Twilio', `SK${HEX64.slice(0, 32)}`],
  ]
  it.each(cases)('finds a %s key in prose, with its exact span', (_name, key) => {
    expect(keys(`the key ${key} was rotated`)).toEqual([key])
  })

  it('needs the whole body: one character short is no provider key', () => {
    expect(keys('id AKIAIOSFODNN7EXAMPL')).toEqual([])
    expect(keys(`k glpat-${BODY.slice(0, 19)}`)).toEqual([])
    expect(keys(`k xoxb-${BODY.slice(0, 9)}`)).toEqual([])
  })

  it('needs letters and digits after prefixes that are also words', () => {
    expect(keys('uses sk-learn-and-scikit-image-together today')).toEqual([])
    expect(keys('task-runner-for-the-deployment-pipeline')).toEqual([])
  })
})

describe('api_key: what is not a secret', () => {
  it('leaves hex digests, UUIDs and git commits alone, even after a secret-sounding name', () => {
    expect(keys(`sha256 ${HEX64} ${HEX64.toUpperCase()}`)).toEqual([])
    expect(keys(`commit ${HEX64.slice(0, 40)}`)).toEqual([])
    expect(keys(`id ${randomUUID()}`)).toEqual([])
    expect(keys(`"api_key": "${HEX64.slice(0, 32)}"`)).toEqual([])
  })

  it('leaves SRI digests and digests named as such alone', () => {
    const digest = createHash('sha512').update('x').digest('base64')
    expect(keys(`"integrity": "sha512-${digest}"`)).toEqual([])
    expect(keys(`"digest": "${createHash('sha256').update('y').digest('base64')}"`)).toEqual([])
    expect(keys(`"fileHash": "${BODY}"`)).toEqual([])
  })

  it('leaves base64 lines of certificates and public keys alone', () => {
    const cert = `-----BEGIN CERTIFICATE-----\n${BODY}${BODY}\n${BODY}\n-----END CERTIFICATE-----`
    expect(keys(cert)).toEqual([])
    expect(keys(`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${BODY} alice@laptop`)).toEqual([])
  })

  it('leaves identifiers and paths made of words alone', () => {
    expect(keys('at processUtf8EncodedStringBufferV2Handler (index.js:12:5)')).toEqual([])
    expect(keys('/home/alice/projects/Sluice2026/src/guard/index.ts')).toEqual([])
    expect(keys('kubernetes-io-cluster-service-account-token-7x9qz')).toEqual([])
  })

  it('leaves base64 of text (cursors) and listing positions alone', () => {
    const cursor = Buffer.from(JSON.stringify({ page: 3, after: 'user_123', sort: 'created' }))
    expect(keys(`"next": "${cursor.toString('base64')}"`)).toEqual([])
    expect(keys(`{"nextPageToken": "${BODY}"}`)).toEqual([])
    expect(keys(`{"page_token": "${BODY}"}`)).toEqual([])
    expect(keys(`{"request_id": "${BODY}"}`)).toEqual([])
  })

  it('leaves alphabets alone: characters in order, or 32+ that never repeat', () => {
    const base64Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    expect(keys(`const chars = "${base64Alphabet}"`)).toEqual([])
    expect(
      keys("alphabet = 'useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict'"),
    ).toEqual([])
  })

  it('leaves URL-encoded base64 data alone, and keeps an encoded key whole', () => {
    const blob = Buffer.from(BODY.repeat(8))
      .toString('base64')
      .replace(/\+/g, '%2B')
      .replace(/\//g, '%2F')
    expect(keys(`url("data:image/svg+xml;base64,${blob}")`)).toEqual([])
    const encoded = `${BODY.slice(0, 20)}%2B${BODY.slice(20, 40)}`
    expect(keys(`?secret=${encoded}&x=1`)).toEqual([encoded])
  })

  it('leaves public keys named as such alone', () => {
    expect(keys(`const pubkey256 = '${BODY}='`)).toEqual([])
    expect(keys(`"public_key": "${BODY}"`)).toEqual([])
  })

  it('leaves segments of a dotted whole alone', () => {
    expect(keys(`x.${BODY}.y`)).toEqual([])
    expect(keys(`${BODY}.example.com`)).toEqual([])
  })
})

describe('api_key: high-entropy tokens', () => {
  it('finds a standalone token of mixed case and digits', () => {
    expect(keys(`found ${BODY} in the logs`)).toEqual([BODY])
    // In a path, the segment is the token.
    expect(keys(`GET /v1/files/${BODY}/download`)).toEqual([BODY])
    // Base64 has slashes of its own.
    expect(keys('aws wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')).toEqual([
      'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    ])
  })

  it('finds a shorter token after a secret name, a scheme or an assignment', () => {
    const short = BODY.slice(0, 20)
    expect(keys(`"client_secret": "${short}"`)).toEqual([short])
    expect(keys(`password=${short}`)).toEqual([short])
    expect(keys(`Authorization: Bearer ${short}`)).toEqual([short])
    expect(
      keys(`Authorization: Basic ${Buffer.from('user:Tr0ub4dor&3xyz').toString('base64')}`),
    ).toEqual([Buffer.from('user:Tr0ub4dor&3xyz').toString('base64')])
    expect(keys(`_authToken=${short}`)).toEqual([short])
    expect(keys(`x-api-key: ${short}`)).toEqual([short])
  })

  it('does not take a name for a secret name when it only starts like one', () => {
    const short = BODY.slice(0, 20)
    expect(keys(`"author": "${short}"`)).toEqual([])
    expect(keys(`"monkey": "${short}"`)).toEqual([])
    // The name must be on the same line.
    expect(keys(`password:\n${short}`)).toEqual([])
  })
})
