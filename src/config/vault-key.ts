/**
 * The key of the shared PII vault (`guardrails.pii.vaultKeyFrom`), read at start like every
 * secret reference: 32 bytes written as 64 hex digits or as base64 (standard or URL-safe,
 * padding optional), so `openssl rand -base64 32` and `openssl rand -hex 32` both work.
 *
 * @module
 */
import { configError, readSecretRef, type Config } from './load.js'

/** Bytes of a vault key: AES-256 takes 32. */
export const VAULT_KEY_BYTES = 32

const HEX = /^[0-9a-fA-F]{64}$/
const BASE64 = /^[A-Za-z0-9+/_-]{43}={0,1}$/

/** The 32 bytes `text` spells, or undefined when it is neither form. */
export function parseVaultKey(text: string): Buffer | undefined {
  const trimmed = text.trim()
  if (HEX.test(trimmed)) return Buffer.from(trimmed, 'hex')
  if (!BASE64.test(trimmed)) return undefined
  const bytes = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  return bytes.length === VAULT_KEY_BYTES ? bytes : undefined
}

/**
 * The vault key the config names, read now; undefined when it names none.
 *
 * @throws SluiceError `CONFIG_INVALID` naming the file, `guardrails.pii.vaultKeyFrom` and what
 *   was expected. Never the key, nor how it begins.
 */
export function readVaultKey(
  config: Pick<Config, 'file' | 'baseDir' | 'guardrails'>,
): Buffer | undefined {
  const ref = config.guardrails.pii?.vaultKeyFrom
  if (ref === undefined) return undefined
  const at = 'guardrails.pii.vaultKeyFrom'
  const file = config.file ?? '<inline>'
  let text: string
  try {
    text = readSecretRef(ref, config.baseDir)
  } catch (cause) {
    throw configError(
      file,
      [`${at}: ${cause instanceof Error ? cause.message : String(cause)}`],
      cause,
    )
  }
  const key = parseVaultKey(text)
  if (key === undefined) {
    throw configError(file, [
      `${at}: ${ref} holds ${text.trim().length} characters that are not a ${VAULT_KEY_BYTES}-byte key; expected 64 hex digits or base64 of ${VAULT_KEY_BYTES} bytes (openssl rand -base64 ${VAULT_KEY_BYTES})`,
    ])
  }
  return key
}
