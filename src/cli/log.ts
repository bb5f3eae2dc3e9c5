/**
 * The operator log of every long-running command: JSON lines on stderr (stdout belongs to
 * results and to the stdio transport).
 *
 * @module
 */

export type LogFn = (
  level: 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void

/** One JSON line per message: `level`, `time` (ISO 8601), `msg`, then the fields. */
export const stderrLog: LogFn = (level, message, fields) => {
  process.stderr.write(
    `${JSON.stringify({ level, time: new Date().toISOString(), msg: message, ...fields })}\n`,
  )
}
