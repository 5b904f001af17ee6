/**
 * The report as JUnit XML, so any CI shows the findings as failed tests: one failing test case per
 * finding, and one passing case when there is nothing to report.
 */
import type { Report } from '../types.js';
import { escapeXml as x } from './escape.js';

/**
 * Formats a report as a JUnit XML document.
 *
 * @example fs.writeFileSync('retry-analysis.xml', formatJunit(report))
 */
export function formatJunit(report: Report): string {
  const cases: string[] = [];
  const names = new Map<string, number>();
  const unique = (name: string): string => {
    const n = (names.get(name) ?? 0) + 1;
    names.set(name, n);
    return n === 1 ? name : `${name} #${n}`;
  };
  for (const f of report.findings) {
    const about = [f.client === undefined ? null : `client ${f.client}`, f.route === undefined ? null : `route ${f.route}`, f.userAgent === undefined ? null : `type ${f.userAgent}`].filter((s): s is string => s !== null).join(', ');
    const name = unique(about === '' ? f.code : `${f.code} (${about})`);
    const body = `${f.message}\n\nWhat to do: ${f.advice}\n\nEvidence: ${JSON.stringify(f.evidence)}`;
    cases.push(
      `    <testcase classname="aftershock.retries.${x(f.code)}" name="${x(name)}" time="0">\n      <failure message="${x(f.message)}" type="${x(f.severity)}">${x(body)}</failure>\n    </testcase>`,
    );
  }
  if (cases.length === 0) cases.push(`    <testcase classname="aftershock.retries" name="no retry findings (verdict ${x(report.verdict)})" time="0"/>`);
  const failures = report.findings.length;
  const tests = Math.max(1, failures);
  const props = [
    ['verdict', report.verdict],
    ['confidence', report.confidence.level],
    ['attempts', String(report.totals.attempts)],
    ['retries', String(report.totals.retries)],
    ['amplification', String(report.totals.amplification)],
    ['retryRatio', String(report.totals.retryRatio)],
    ['session', report.session ?? ''],
    ['target', report.target ?? ''],
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="aftershock" tests="${tests}" failures="${failures}" errors="0" time="0">`,
    `  <testsuite name="aftershock retry analysis${report.session === null ? '' : ` (${x(report.session)})`}" tests="${tests}" failures="${failures}" errors="0" skipped="0" time="0">`,
    '    <properties>',
    ...props.map(([k, v]) => `      <property name="${x(k as string)}" value="${x(v as string)}"/>`),
    '    </properties>',
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
