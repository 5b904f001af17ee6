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
   * junit: the outcome of every `--fail-on` gate (`evaluateGates(report, gates, { all: true })`).
   * Each gate becomes a test case and only findings a held gate selected fail, so the XML agrees
   * with the exit status. Without it, every finding is a failing test case.
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
      return `${JSON.stringify(report, null, 2)}\n`;
    case 'markdown':
      return formatMarkdown(report, options.rows);
    case 'html':
      return formatHtml(report, options.rows);
    case 'junit':
      return formatJunit(report, options.gates === undefined ? {} : { gates: options.gates });
    case 'har':
      throw new AftershockError('ERR_BAD_OPTION', 'har is built from the recording, not from a report: run `aftershock analyze <files> --format har`, or call writeHar(records, stream)');
    default:
      throw new AftershockError('ERR_BAD_OPTION', `unknown report format ${JSON.stringify(format)}: use one of ${REPORT_FORMATS.join(', ')}`);
  }
}

export { formatText, formatMarkdown, formatHtml, formatJunit };
export { writeHar, harEntry } from './har.js';
export { escapeHtml, escapeMarkdown, escapeXml, stripControls } from './escape.js';
