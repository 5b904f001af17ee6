/**
 * Retry analysis: grades what the clients did about the failures the proxy injected.
 *
 * One engine, two ways in: live inside the proxy (`createAnalyzer`, fed every record as it is
 * written) and offline over recordings (`analyzeFiles`). Both give the same `Report`, which
 * `formatReport` renders and `evaluateGates` checks in CI.
 *
 * @example
 * import { analyzeFiles, formatReport, parseGate, evaluateGates } from './analysis/index.js';
 * const report = await analyzeFiles(['traffic.ndjson']);
 * console.log(formatReport(report, 'text'));
 * if (evaluateGates(report, parseGate('retry-storm')).length > 0) process.exitCode = 1;
 */

/**
 * Creates the analysis engine: `ingest(record)` for every record (in write order), `report()` at
 * any time (read-only), `reset()`. Memory stays bounded by `maxClients` and the other caps.
 *
 * @example
 * const analyzer = createAnalyzer({ clientKeyHeader: 'x-client-id' });
 * for (const r of records) analyzer.ingest(r);
 * const { verdict, totals } = analyzer.report();
 */
export { createAnalyzer, type Analyzer, type AnalyzerStats } from './analyzer.js';

/**
 * Analyses recordings offline: streams each file (64 KiB chunks, gzip by extension, `-` for stdin),
 * merges several proxies' files by time, skips and reports bad lines.
 *
 * @example
 * const report = await analyzeFiles(['a.ndjson', 'b.ndjson.gz'], { window: '90s' });
 */
export { analyzeFiles, mergeRecordings, type AnalyzeFilesOptions, type AnalyzeProgress, type MergeOptions } from './files.js';

/**
 * Renders a report as text, json, markdown, html or junit; `writeHar` streams records as HAR 1.2.
 *
 * @example
 * fs.writeFileSync('report.html', formatReport(report, 'html'));
 * await writeHar(readRecords('traffic.ndjson'), fs.createWriteStream('traffic.har'));
 */
export { formatReport, writeHar, REPORT_FORMATS, type ReportFormat, type FormatOptions, type GateJson } from './format/index.js';

/**
 * CI gates: `parseGate('retry-storm,amplification>1.5')` then `evaluateGates(report, gates)`, which
 * returns the conditions that held (empty means pass).
 *
 * @example
 * const held = evaluateGates(report, parseGate('critical,retryRatio>20%'));
 * for (const g of held) console.error(g.detail);
 */
export { parseGate, evaluateGates, GATE_METRICS, type Gate, type GateOp, type GateResult } from './gates.js';

/**
 * The classifiers, for callers that have their own gaps: `classifyBackoff([100, 200, 400])`,
 * `classifyJitter({ gapsByIndex })`, `checkRetryAfter(gapMs, retryAfterSeconds)`.
 *
 * @example classifyBackoff([100, 200, 400, 800]).class === 'exponential'
 */
export { classifyBackoff, checkRetryAfter, BACKOFF_THRESHOLDS, type BackoffResult } from './backoff.js';
export { classifyJitter, JITTER_THRESHOLDS, type JitterInput, type JitterResult } from './jitter.js';

/**
 * The finding catalogue (code, severity, title, advice) and the report-level thresholds.
 *
 * @example FINDINGS.find((f) => f.code === 'no-jitter')?.advice
 */
export { FINDINGS, FINDING_CODES, type FindingInfo } from './findings.js';
export { REPORT_THRESHOLDS, KNOWN_LIMITS } from './report.js';

export type * from './types.js';
