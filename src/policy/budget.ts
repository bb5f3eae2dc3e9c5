/**
 * Per-execution call budgets: the engine asks `PolicySet.budgetsFor(call)` which budgets a call
 * matches, then consumes them here, all or nothing.
 *
 * @module
 */
import type { MatchedBudget } from './policy-set.js'

export type BudgetResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly budgetId: string; readonly maxCallsPerExecution: number }

/** Counts calls against budgets for one execution; make a new tracker per execution. */
export class BudgetTracker {
  readonly #used: Map<string, number>

  /** `used`: counts carried over, e.g. from the run before an approval (engine, durable.ts). */
  constructor(used: Iterable<readonly [string, number]> = []) {
    this.#used = new Map(used)
  }

  /**
   * Counts one call against every matched budget, or against none when any of them is spent.
   * A budget of N allows N calls; call N + 1 fails naming the first spent budget.
   */
  tryConsume(matched: readonly MatchedBudget[]): BudgetResult {
    for (const budget of matched) {
      if ((this.#used.get(budget.id) ?? 0) >= budget.maxCallsPerExecution) {
        return { ok: false, budgetId: budget.id, maxCallsPerExecution: budget.maxCallsPerExecution }
      }
    }
    // A budget matched twice by one call (the same id listed twice) still counts once.
    for (const id of new Set(matched.map((b) => b.id)))
      this.#used.set(id, (this.#used.get(id) ?? 0) + 1)
    return { ok: true }
  }

  /** Every count so far, to carry into a resumed run. */
  entries(): [string, number][] {
    return [...this.#used]
  }

  /** Calls counted so far against a budget. */
  used(budgetId: string): number {
    return this.#used.get(budgetId) ?? 0
  }
}
