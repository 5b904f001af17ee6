/**
 * One entry point for every output of a report. HAR is the exception: it is built from the records
 * (see `writeHar`), because a report keeps aggregates, not exchanges.
 */
import { AftershockError } from '../../errors.js';
import type { GateResult } from '../gates.js';
import type { Report } from '../types.js';
import { formatHtml } from './html.js';
import { formatJunit } from './junit.js';
import { formatMarkdown } from './markdown.js';
import { formatText } from './text.js';

/** Every output format `analyze --format` knows. */
export const REPORT_FORMATS = ['text', 'json', 'markdown', 'html', 'junit', 'har'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface FormatOptions {
  /** text: ANSI colours (only for a TTY). Default false. */
  color?: boolean;
  /** Rows per table in text/markdown/html. */
  rows?: number;
  /**
   * The outcome of every `--fail-on` gate (`evaluateGates(report, gates, { all: true })`), shown in
   * every format. junit: each gate becomes a test case and only findings a held gate selected
   * fail, so the XML agrees with the exit status (without it, every finding is a failing test
   * case). json: a `gates` list after the report's own fields (`expr`, `kind`, `held`, `actual`,
   * `detail`; `actual` is null when not measurable, never recovered or unbounded, as `detail` says).
   * text, markdown, html: a list or table of the gates under the verdict.
   */
  gates?: readonly GateResult[];
}

/**
 * Renders a report: `text` (a terminal summary, verdict first), `json` (the contract, pretty-printed),
 * `markdown` (a PR comment), `html` (one self-contained page with inline SVG charts) or `junit`
 * (each finding a failed test case; with `gates`, one test case per gate and only the findings a
 * held gate selected fail). `har` is built from records: use `writeHar`.
 *
 * @example
 * process.stdout.write(formatReport(analyzer.report(), 'text', { color: process.stdout.isTTY }));
 */
export function formatReport(report: Report, format: ReportFormat, options: FormatOptions = {}): string {
  switch (format) {
    case 'text':
      return formatText(report, options);
    case 'json':
      return `${JSON.stringify(options.gates === undefined ? report : { ...report, gates: options.gates.map(gateJson) }, null, 2)}\n`;
    case 'markdown':
      return formatMarkdown(report, options.rows, options.gates);
    case 'html':
      return formatHtml(report, options.rows, options.gates);
    case 'junit':
      return formatJunit(report, options.gates === undefined ? {} : { gates: options.gates });
    case 'har':
      throw new AftershockError('ERR_BAD_OPTION', 'har is built from the recording, not from a report: run `aftershock analyze <files> --format har`, or call writeHar(records, stream)');
    default:
      throw new AftershockError('ERR_BAD_OPTION', `unknown report format ${JSON.stringify(format)}: use one of ${REPORT_FORMATS.join(', ')}`);
  }
}

/** A gate's outcome as the JSON report lists it. */
export interface GateJson {
  readonly expr: string;
  readonly kind: GateResult['gate']['kind'];
  readonly held: boolean;
  readonly actual: number | string | null;
  readonly detail: string;
}

function gateJson(g: GateResult): GateJson {
  const actual = typeof g.actual === 'number' && !Number.isFinite(g.actual) ? null : g.actual;
  return { expr: g.expr, kind: g.gate.kind, held: g.held, actual, detail: g.detail };
}

export { formatText, formatMarkdown, formatHtml, formatJunit };
export { writeHar, harEntry } from './har.js';
export { escapeHtml, escapeMarkdown, escapeXml, stripControls } from './escape.js';
