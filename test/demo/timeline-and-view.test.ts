/**
 * The pure parts of the demo: compressing a profile's timeline (phases, schedules and Retry-After
 * scale; what a fault does to one request does not), and the live view's two renderings.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadDemoTimeline, scaleProfileText } from '../../src/demo/profile-timeline.js';
import { currentPhase, fitLine, renderFrame, renderPlainLines, startLiveView, type ViewState } from '../../src/demo/live-view.js';

describe('demo timeline', () => {
  it('runs signal-2021 at its natural length by default', async () => {
    const t = await loadDemoTimeline('signal-2021');
    expect(t.scale).toBe(1);
    expect(t.totalMs).toBe(60_000);
    expect(t.profile.builtin).toBe('signal-2021');
    expect(t.phases.map((p) => p.name)).toEqual(['healthy', 'degrading', 'outage', 'recovery-25', 'recovery-50', 'recovery-75', 'healthy-again']);
    expect(t.phases[2]).toMatchObject({ startMs: 18_000, endMs: 33_000 });
  });

  it('compresses the timeline to --duration: phases and Retry-After scale, per-request fault timings do not', async () => {
    const t = await loadDemoTimeline('signal-2021', 10_000);
    expect(t.totalMs).toBe(10_000);
    expect(t.scale).toBeCloseTo(1 / 6, 6);
    expect(t.phases[2]).toMatchObject({ name: 'outage', startMs: 3000, endMs: 5500 });
    const cfg = t.profile.config;
    const outage = cfg.phases?.[2]?.rules?.[0]?.fault as { retryAfter: string };
    expect(outage.retryAfter).toBe('833ms'); // 5 s / 6, with its unit: a bare number would be seconds
    expect(t.profile.phases[2]?.rules[0]?.fault.retryAfter).toBe('1'); // the header value, rounded up
    const capacity = cfg.phases?.[1]?.rules?.[0]?.fault as { queueTimeout: string };
    expect(capacity.queueTimeout).toBe('1s'); // as written
  });

  it('scales when: schedules and ramps, leaves HTTP-date Retry-After alone', () => {
    const text = [
      'rules:',
      '  - name: a',
      '    when: { after: 10s, every: 20s, for: 5s, ramp: { over: 8s } }',
      '    fault: { type: http-error, retryAfter: "Wed, 21 Oct 2026 07:28:00 GMT" }',
      'phases:',
      '  - { name: p, duration: 1m }',
    ].join('\n');
    const out = parseYaml(scaleProfileText(text, 0.5)) as { rules: Array<{ when: Record<string, unknown>; fault: Record<string, unknown> }>; phases: Array<{ duration: number }> };
    expect(out.rules[0]?.when).toEqual({ after: 5000, every: 10_000, for: 2500, ramp: { over: 4000 } });
    expect(out.rules[0]?.fault.retryAfter).toBe('Wed, 21 Oct 2026 07:28:00 GMT');
    expect(out.phases[0]?.duration).toBe(30_000);
  });

  it('refuses a profile without a timeline', async () => {
    await expect(loadDemoTimeline('flaky', 10_000)).rejects.toThrow(/no finite timeline/);
  });
});

const state: ViewState = {
  title: 'aftershock demo',
  elapsedMs: 35_000,
  totalMs: 60_000,
  phases: [
    { name: 'healthy', startMs: 0, endMs: 18_000 },
    { name: 'outage', startMs: 18_000, endMs: 40_000, description: 'everything fails' },
    { name: 'healthy-again', startMs: 40_000, endMs: 60_000 },
  ],
  fleets: [
    { name: 'naive', organic: 50, offered: 550, goodput: 0, faults: 550, busy: 4, queued: 128, queueLimit: 128 },
    { name: 'careful', organic: 50, offered: 52, goodput: 0, faults: 52, busy: 0, queued: 0, queueLimit: 128 },
  ],
};

describe('live view', () => {
  it('names the current phase', () => {
    expect(currentPhase(state.phases, 35_000)?.name).toBe('outage');
    expect(currentPhase(state.phases, 99_000)?.name).toBe('healthy-again');
  });

  it('renders a TTY frame: bar, phase, one row per fleet with amplification', () => {
    const frame = renderFrame(state, 100, false);
    expect(frame).toContain('0:35 / 1:00');
    expect(frame).toContain('outage — everything fails');
    expect(frame).toMatch(/naive\s+50\.0\s+550\.0\s+11\.0x/);
    expect(frame).toMatch(/careful\s+50\.0\s+52\.0\s+1\.0x/);
    expect(frame).toContain('128 full');
    expect(frame).not.toContain('\x1b['); // no colour when asked for none
  });

  it('fits an 80-column terminal (and cuts lines on a narrower one): a wrapped line breaks the redraw in place', () => {
    const long: ViewState = { ...state, phases: Array.from({ length: 9 }, (_, i) => ({ name: `phase-number-${i}`, startMs: i * 1000, endMs: (i + 1) * 1000 })), elapsedMs: 2500, totalMs: 9000 };
    const visible = (l: string): number => [...l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')].length;
    for (const color of [false, true]) {
      for (const s of [state, long]) {
        expect(Math.max(...renderFrame(s, 80, color).split('\n').map(visible))).toBeLessThanOrEqual(79);
        expect(Math.max(...renderFrame(s, 50, color).split('\n').map(visible))).toBeLessThanOrEqual(49);
      }
    }
    // At 80 columns nothing of the table is cut.
    expect(renderFrame(state, 80, false)).toMatch(/naive\s+50\.0\s+550\.0\s+11\.0x\s+0\.0\s+550\.0\s+4 \+  128 full/);
    expect(fitLine('\x1b[1mabcdef\x1b[22m', 3)).toBe('\x1b[1mabc\x1b[0m');
    expect(fitLine('abc', 3)).toBe('abc');
  });

  it('prints plain lines off a TTY, and a last one at stop', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const view = startLiveView({ stream: out, tty: false, lineMs: 30, state: () => state });
    await new Promise((r) => setTimeout(r, 80));
    view.stop();
    const lines = text.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/^\[ 0:35 outage\s+\] naive\s+organic\s+50\/s\s+offered\s+550\/s\s+\(11\.0x\)/);
    expect(text).not.toContain('\x1b[');
    expect(renderPlainLines(state)).toHaveLength(2);
  });

  it('redraws in place on a TTY and gives the cursor back', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const view = startLiveView({ stream: out, tty: true, color: false, frameMs: 1000, state: () => state });
    view.stop();
    expect(text.startsWith('\x1b[?25l')).toBe(true);
    expect(text).toContain('\x1b[2K');
    expect(text).toMatch(/\x1b\[\d+F/); // moved back up for the second draw
    expect(text.endsWith('\x1b[?25h')).toBe(true);
  });
});
