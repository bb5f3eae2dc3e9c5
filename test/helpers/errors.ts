/**
 * What a refused call throws, for the tests that check the refusal: the `SluiceError` itself, or
 * the message of the `CONFIG_INVALID` a config is refused with.
 */
import { expect } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { SluiceError } from '../../src/errors.js'

/** Runs `fn` and returns the SluiceError it throws. */
export function failure(fn: () => unknown): SluiceError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(SluiceError)
    return e as SluiceError
  }
  throw new Error('expected a SluiceError')
}

/** The message of the `CONFIG_INVALID` that `parseConfig(input, file, baseDir)` throws. */
export function configRefusal(input: unknown, file?: string, baseDir?: string): string {
  const error = failure(() => parseConfig(input, file, baseDir))
  expect(error.code).toBe('CONFIG_INVALID')
  return error.message
}
