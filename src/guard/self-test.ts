/**
 * `selfTest()`: what `sluice evidence` runs to show the detectors work in this build. For each
 * kind, one true positive in context that must be found with its exact span, and one near
 * miss, the closest thing that is not that kind, that must not be. All values are fake:
 * test card numbers, documentation addresses, the IBAN of the ISO 13616 example.
 *
 * @module
 */
import { detect } from './detect.js'
import { PII_KINDS, type PiiKind } from './kinds.js'

interface Sample {
  /** Text with the value inside. */
  readonly text: string
  /** The value `detect` must report, exactly. */
  readonly value: string
  /** Text holding the near miss only. */
  readonly nearMiss: string
}

/** Built from parts so that no secret scanner mistakes this file for a leak. */
const FAKE_GITHUB_TOKEN = ['ghp', '_', 'R7vQ2mPx9Tk4Lw8nB3sYc6Jd1Hf5Gz0AeKuR7'].join('')
const FAKE_JWT = [
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9',
  'eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ',
  'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
].join('.')
const FAKE_PEM = [
  '-----BEGIN EC PRIVATE KEY-----',
  'MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5dGzqvZHrnzFSoAoGCCqGSM49',
  'AwEHoUQDQgAE7rvvVGLV4kbBaGzcPsgiWYjPcvvOK6UsvbkJTmNbHxHXbzM5gmGM',
  '-----END EC PRIVATE KEY-----',
].join('\n')

const SAMPLES: Record<PiiKind, Sample> = {
  email: {
    text: 'Contact: jane.roe@example.com.',
    value: 'jane.roe@example.com',
    nearMiss: 'ssh root@localhost; icon@2x.png',
  },
  phone: {
    text: '{"phone":"+1 (415) 555-2671"}',
    value: '+1 (415) 555-2671',
    nearMiss: 'released 2026-12-07 12:30:45, order 4155552671',
  },
  card: {
    text: 'card 4111 1111 1111 1111 on file',
    value: '4111 1111 1111 1111',
    nearMiss: 'card 4111 1111 1111 1112 fails Luhn',
  },
  iban: {
    text: 'IBAN: DE89 3704 0044 0532 0130 00',
    value: 'DE89 3704 0044 0532 0130 00',
    nearMiss: 'IBAN: DE88 3704 0044 0532 0130 00',
  },
  ssn: {
    text: 'SSN 078-05-1120.',
    value: '078-05-1120',
    nearMiss: 'SSN 666-05-1120 and 078-00-1120',
  },
  ip: {
    text: 'from 192.0.2.44 and 2001:db8::1',
    value: '192.0.2.44',
    nearMiss: 'version 1.2.3.4.5 at 12:30:45',
  },
  api_key: {
    text: `GITHUB_TOKEN=${FAKE_GITHUB_TOKEN}`,
    value: FAKE_GITHUB_TOKEN,
    nearMiss:
      'sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 id 123e4567-e89b-12d3-a456-426614174000',
  },
  jwt: {
    text: `Authorization: Bearer ${FAKE_JWT}`,
    value: FAKE_JWT,
    // The same shape whose header has no `alg` ({"typ":"JWT"}).
    nearMiss: 'cursor eyJ0eXAiOiJKV1QifQ.eyJwYWdlIjoyfQ.c2ln',
  },
  private_key: {
    text: `key:\n${FAKE_PEM}\n`,
    value: FAKE_PEM,
    nearMiss:
      '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----',
  },
}

/** Per kind: whether its true positive was found with its exact span, and its near miss ignored. */
export function selfTest(
  kinds: ReadonlySet<PiiKind> = new Set(PII_KINDS),
): Array<{ kind: PiiKind; found: boolean; nearMissIgnored: boolean }> {
  return PII_KINDS.filter((kind) => kinds.has(kind)).map((kind) => {
    const sample = SAMPLES[kind]
    const only = new Set([kind])
    const start = sample.text.indexOf(sample.value)
    const found = detect(sample.text, only).some(
      (d) => d.start === start && d.end === start + sample.value.length,
    )
    const nearMissIgnored = detect(sample.nearMiss, only).length === 0
    return { kind, found, nearMissIgnored }
  })
}
