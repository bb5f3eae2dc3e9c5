// What the sandbox gives model code besides `tools` (DESIGN.md §3 "Guest API"); the same
// declarations the engine's type check uses. Nothing else: no fetch, process or timers.
declare const console: {
  log(...data: unknown[]): void
  info(...data: unknown[]): void
  warn(...data: unknown[]): void
  error(...data: unknown[]): void
}
