/**
 * What a library user imports from the package root: the README's samples use these names, so
 * they must be there (values at run time; the types are checked by the typecheck of this file).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as lib from '../../src/index.js';
import type {
  AdminClientOptions,
  AnalyzeFilesOptions,
  AnalyzerStats,
  DemoOptions,
  DemoResult,
  FormatOptions,
  Gate,
  GateResult,
  LiveTotals,
  MergeOptions,
  ProfileFileState,
  Recorder,
  ReportFormat,
  RuleEngine,
  RulePatch,
  ProxyHandle,
  FaultInput,
  RuleInput,
} from '../../src/index.js';
import { onCleanup, request, startUpstream, tempDir } from '../helpers.js';

/** Type-checked only (never called): proxy.addFault takes a typed rule, so a typo fails the build, not the run. */
export function addFaultIsTyped(proxy: ProxyHandle): void {
  proxy.addFault({ name: 'ok', match: { path: '/**' }, fault: { type: 'http-error', status: 503, retryAfter: '2s' } });
  proxy.addFault({ fault: { type: 'reset' } });
  // @ts-expect-error a misspelt fault type
  proxy.addFault({ name: 'x', fault: { type: 'http-eror', status: 503 } });
  // @ts-expect-error a misspelt option of the fault
  proxy.addFault({ name: 'x', fault: { type: 'http-error', stauts: 503 } });
  // @ts-expect-error a misspelt key of the rule
  proxy.addFault({ nmae: 'x', fault: { type: 'reset' } });
  const f: FaultInput = { type: 'latency', delay: '100ms' };
  const r: RuleInput = { match: { path: '/api/**' }, fault: f };
  proxy.addFault(r);
}

describe('the package root', () => {
  it('exports the readers, the error helpers and the types the README uses', async () => {
    // Every type a public signature uses (engine.patchRule's patch, proxy.profileFile, new AdminClient's options, mergeRecordings' options, analyzer.stats(), liveTotals()) and the FAULT_ACTED value.
    for (const name of ['readRecords', 'mergeRecordings', 'writeHar', 'isAftershockError', 'RuleNameTakenError', 'closingParagraph', 'REPORT_FORMATS', 'GATE_METRICS', 'FAULT_ACTED']) {
      expect(lib, name).toHaveProperty(name);
    }
    const types: Array<
      AdminClientOptions | AnalyzeFilesOptions | AnalyzerStats | DemoOptions | DemoResult | FormatOptions | Gate | GateResult | LiveTotals | MergeOptions | ProfileFileState | Recorder | ReportFormat | RuleEngine | RulePatch | undefined
    > = [undefined];
    expect(types).toHaveLength(1);
  });

  it('the README sample: a second analyzer beside a running proxy, then its recording as HAR', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const proxy = await lib.startProxy({ target: up.url, listen: '127.0.0.1:0', admin: false, record: file });
    onCleanup(() => proxy.close());
    const live = lib.createAnalyzer({ maxClients: 10_000 });
    proxy.recorder.addListener((r) => live.ingest(r));
    await request(`${proxy.url}/a`);
    // proxy.stats() is what GET /stats answers.
    expect(proxy.stats()).toMatchObject({ profile: { name: proxy.profile.name, hash: proxy.profile.hash }, ready: true, exchanges: 1 });
    expect(typeof proxy.stats().uptimeSeconds).toBe('number');
    // A mark is checked as POST /marks checks it.
    proxy.mark('after /a');
    for (const bad of ['', '   ', 'x'.repeat(501), 42 as unknown as string]) expect(() => proxy.mark(bad)).toThrow(expect.objectContaining({ code: 'ERR_BAD_OPTION' }));
    await proxy.close();
    expect(live.report().totals.attempts).toBe(1);
    const har = path.join(dir, 'rec.har');
    const out = fs.createWriteStream(har);
    expect(await lib.writeHar(lib.readRecords(file), out)).toBe(1);
    out.end();
    await new Promise<void>((r) => out.once('finish', () => r()));
    expect(JSON.parse(fs.readFileSync(har, 'utf8')).log.entries).toHaveLength(1);
    const marks = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"type":"mark"'));
    expect(marks.map((l) => (JSON.parse(l) as { label: string }).label)).toEqual(['after /a']);
  });
});
