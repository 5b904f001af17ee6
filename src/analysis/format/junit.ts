/**
 * The report as JUnit XML, so any CI shows the findings as tests.
 *
 * Without gates: one failing test case per finding, and one passing case when there is nothing to
 * report. With the `--fail-on` outcomes (`gates`), the XML agrees with the exit status, so a CI that
 * fails on JUnit failures and one that reads the exit code decide alike: a test suite of one case
 * per gate (failing when it held), then the findings suite, where only findings a held gate selected
 * fail and the rest are skipped cases that still carry their text.
 */
import { gateSelects, type GateResult } from '../gates.js';
import type { Finding, Report } from '../types.js';
import { escapeXml as x } from './escape.js';

export interface JunitOptions {
  /**
   * The outcome of every `--fail-on` gate, held or not (`evaluateGates(report, gates, { all: true })`).
   * When given, each gate is a test case and a finding fails only when a held gate selected it.
   */
  gates?: readonly GateResult[];
}

/** Test case names, made unique within a suite (`name`, `name #2`, ...). */
function uniqueNames(): (name: string) => string {
  const names = new Map<string, number>();
  return (name) => {
    const n = (names.get(name) ?? 0) + 1;
    names.set(name, n);
    return n === 1 ? name : `${name} #${n}`;
  };
}

interface Suite {
  name: string;
  cases: string[];
  failures: number;
  skipped: number;
  properties?: ReadonlyArray<readonly [string, string]>;
}

function renderSuite(s: Suite): string[] {
  const props = s.properties === undefined ? [] : ['    <properties>', ...s.properties.map(([k, v]) => `      <property name="${x(k)}" value="${x(v)}"/>`), '    </properties>'];
  return [`  <testsuite name="${x(s.name)}" tests="${s.cases.length}" failures="${s.failures}" errors="0" skipped="${s.skipped}" time="0">`, ...props, ...s.cases, '  </testsuite>'];
}

function findingCase(f: Finding, name: string, outcome: 'failure' | 'skipped'): string {
  const body = `${f.message}\n\nWhat to do: ${f.advice}\n\nEvidence: ${JSON.stringify(f.evidence)}`;
  const inner = outcome === 'failure' ? `<failure message="${x(f.message)}" type="${x(f.severity)}">${x(body)}</failure>` : `<skipped message="${x(`not gated by --fail-on: ${f.message}`)}">${x(body)}</skipped>`;
  return `    <testcase classname="aftershock.retries.${x(f.code)}" name="${x(name)}" time="0">\n      ${inner}\n    </testcase>`;
}

/**
 * Formats a report as a JUnit XML document; with `gates`, one test case per gate and the verdict
 * of the XML is the verdict of the gates.
 *
 * @example fs.writeFileSync('retry-analysis.xml', formatJunit(report))
 * @example formatJunit(report, { gates: evaluateGates(report, parseGate('critical'), { all: true }) })
 */
export function formatJunit(report: Report, options: JunitOptions = {}): string {
  const gates = options.gates;
  const held = (gates ?? []).filter((g) => g.held);
  // Without gates every finding fails; with gates only those a held gate is about.
  const fails = (f: Finding): boolean => gates === undefined || held.some((g) => gateSelects(g.gate, f));
  const suites: Suite[] = [];

  if (gates !== undefined) {
    const unique = uniqueNames();
    const cases = gates.map((g) => {
      const open = `    <testcase classname="aftershock.gates" name="${x(unique(g.expr))}" time="0"`;
      if (!g.held) return `${open}>\n      <system-out>${x(g.detail)}</system-out>\n    </testcase>`;
      return `${open}>\n      <failure message="${x(g.detail)}" type="fail-on">${x(`--fail-on ${g.detail}`)}</failure>\n    </testcase>`;
    });
    suites.push({ name: 'aftershock gates (--fail-on)', cases, failures: held.length, skipped: 0 });
  }

  const unique = uniqueNames();
  const cases: string[] = [];
  let failures = 0;
  let skipped = 0;
  for (const f of report.findings) {
    const about = [f.client === undefined ? null : `client ${f.client}`, f.route === undefined ? null : `route ${f.route}`, f.userAgent === undefined ? null : `type ${f.userAgent}`].filter((s): s is string => s !== null).join(', ');
    const name = unique(about === '' ? f.code : `${f.code} (${about})`);
    if (fails(f)) failures++;
    else skipped++;
    cases.push(findingCase(f, name, fails(f) ? 'failure' : 'skipped'));
  }
  if (cases.length === 0) cases.push(`    <testcase classname="aftershock.retries" name="no retry findings (verdict ${x(report.verdict)})" time="0"/>`);
  suites.push({
    name: `aftershock retry analysis${report.session === null ? '' : ` (${report.session})`}`,
    cases,
    failures,
    skipped,
    properties: [
      ['verdict', report.verdict],
      ['confidence', report.confidence.level],
      ['attempts', String(report.totals.attempts)],
      ['retries', String(report.totals.retries)],
      ['amplification', String(report.totals.amplification)],
      ['retryRatio', String(report.totals.retryRatio)],
      ['session', report.session ?? ''],
      ['target', report.target ?? ''],
    ],
  });

  const tests = suites.reduce((n, s) => n + s.cases.length, 0);
  const failed = suites.reduce((n, s) => n + s.failures, 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="aftershock" tests="${tests}" failures="${failed}" errors="0" time="0">`,
    ...suites.flatMap(renderSuite),
    '</testsuites>',
    '',
  ].join('\n');
}
