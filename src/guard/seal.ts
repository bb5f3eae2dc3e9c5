/**
 * The cryptography of the shared vault: one 32-byte key (`guardrails.pii.vaultKeyFrom`) split
 * by HKDF-SHA256 into an AES-256-GCM key that encrypts entries and an HMAC-SHA256 key that
 * names values in store keys. Two keys from one, so a digest in a key name never helps anyone
 * attack the cipher, and one secret is all an operator distributes.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'
import { VAULT_KEY_BYTES } from '../config/index.js'
import { SluiceError } from '../errors.js'

/** The format version at the head of every sealed value, so a later format can coexist. */
const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16

export class VaultCipher {
  readonly #encryptionKey: Buffer
  readonly #macKey: Buffer

  constructor(key: Uint8Array) {
    if (key.byteLength !== VAULT_KEY_BYTES)
      throw new TypeError(
        `VaultCipher: a vault key has ${VAULT_KEY_BYTES} bytes, not ${key.byteLength}`,
      )
    this.#encryptionKey = derive(key, 'sluice vault aes-256-gcm v1')
    this.#macKey = derive(key, 'sluice vault hmac-sha256 v1')
  }

  /** A keyed digest of `parts` (base64url, 128 bits): the same input names the same key. */
  mac(...parts: readonly string[]): string {
    const hmac = createHmac('sha256', this.#macKey)
    // Length-prefixed, so no two different part lists hash the same bytes.
    for (const part of parts) hmac.update(`${Buffer.byteLength(part)}:${part}`)
    return hmac.digest().subarray(0, 16).toString('base64url')
  }

  /**
   * `plaintext` encrypted; `boundTo` (the store key it will sit under) is authenticated with
   * it, so a ciphertext copied to another key does not open there.
   */
  seal(plaintext: string, boundTo: string): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#encryptionKey, iv, {
      authTagLength: TAG_BYTES,
    })
    cipher.setAAD(aad(boundTo))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return [VERSION, iv, cipher.getAuthTag(), body]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.')
  }

  /**
   * The plaintext of what {@link seal} made for `boundTo`.
   *
   * @throws SluiceError `VAULT_UNREADABLE` when it was altered, moved to another key, or sealed
   *   under another vault key.
   */
  open(sealed: string, boundTo: string): string {
    const parts = sealed.split('.')
    if (parts.length !== 4 || parts[0] !== VERSION) throw unreadable()
    const [iv, tag, body] = parts.slice(1).map((p) => Buffer.from(p, 'base64url'))
    if (iv!.length !== IV_BYTES || tag!.length !== TAG_BYTES) throw unreadable()
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#encryptionKey, iv!, {
        authTagLength: TAG_BYTES,
      })
      decipher.setAAD(aad(boundTo))
      decipher.setAuthTag(tag!)
      return Buffer.concat([decipher.update(body!), decipher.final()]).toString('utf8')
    } catch (cause) {
      throw unreadable(cause)
    }
  }
}

function derive(key: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, new Uint8Array(0), info, 32))
}

function aad(boundTo: string): Buffer {
  return Buffer.from(`sluice vault ${VERSION}\u0000${boundTo}`, 'utf8')
}

/** A vault entry that does not decrypt; never names the token or the value. */
export function unreadable(cause?: unknown): SluiceError {
  return new SluiceError(
    'VAULT_UNREADABLE',
    'a PII vault entry in the store does not decrypt: it was altered or moved in the store, or was written under another guardrails.pii.vaultKeyFrom key (every replica needs the same key)',
    cause === undefined ? {} : { cause },
  )
}
