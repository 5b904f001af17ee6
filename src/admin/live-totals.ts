/**
 * The few numbers of the live retry report that /metrics exports as gauges.
 */
import type { Report } from '../analysis/index.js';

export interface LiveTotals {
  readonly attempts: number;
  readonly logicalRequests: number;
  readonly retries: number;
  readonly retryRatio: number;
  /** offered / organic load; 1 means no retries. */
  readonly amplification: number;
}

/**
 * @example readLiveTotals(proxy.report()).amplification
 */
export function readLiveTotals(report: Report): LiveTotals {
  const t = report.totals;
  return { attempts: t.attempts, logicalRequests: t.logicalRequests, retries: t.retries, retryRatio: t.retryRatio, amplification: t.amplification };
}
