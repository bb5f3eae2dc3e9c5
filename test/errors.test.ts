import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  EXECUTION_ERROR_CODES,
  OPERATOR_ERROR_CODES,
  SluiceError,
  isErrorCode,
  isSluiceError,
} from '../src/errors.js'
import { MISTAKE_WARNING_CODES } from '../src/engine/index.js'
import { WARNING_CODES } from '../src/sandbox/envelope.js'

const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'errors.md'), 'utf8')
const [errorsPart, warningsPart = ''] = doc.split('## Warning codes')
const codesIn = (text: string) => [...text.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1])
const documented = codesIn(errorsPart!)

describe('error codes', () => {
  it('docs/errors.md documents exactly the codes of src/errors.ts, once each', () => {
    expect([...documented].sort()).toEqual(
      [...EXECUTION_ERROR_CODES, ...OPERATOR_ERROR_CODES].sort(),
    )
  })

  it('docs/errors.md documents exactly the warning codes the host keeps and adds, once each', () => {
    expect(codesIn(warningsPart).sort()).toEqual(
      [...WARNING_CODES, ...MISTAKE_WARNING_CODES].sort(),
    )
  })

  it('SluiceError carries code, position and details', () => {
    const e = new SluiceError('SYNTAX_ERROR', 'Unexpected token', {
      line: 3,
      column: 7,
      details: { a: 1 },
    })
    expect(isSluiceError(e, 'SYNTAX_ERROR')).toBe(true)
    expect(isSluiceError(e, 'TIMEOUT')).toBe(false)
    expect([e.line, e.column, e.details]).toEqual([3, 7, { a: 1 }])
    expect(isErrorCode('TIMEOUT')).toBe(true)
    expect(isErrorCode('ERR_NOPE')).toBe(false)
  })
})
