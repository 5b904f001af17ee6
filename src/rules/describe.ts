/**
 * One-line summaries of rules and a short text summary of a profile, for `aftershock profiles
 * show` and logs: what a person needs to know before running it.
 */
import { formatDuration } from '../faults/lib/duration.js';
import type { CompiledProfile, CompiledRule } from './compile.js';

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /[\s,;=]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/**
 * @example describeRule(rule) // 'reject-sends: http-error status=503 retryAfter=2s — POST,PUT /v1/messages/** — p=0.2, after 10s for 1m'
 */
export function describeRule(rule: CompiledRule): string {
  const { type, ...opts } = rule.written;
  const fault = [String(type), ...Object.entries(opts).map(([k, v]) => `${k}=${formatValue(v)}`)].join(' ');
  const m = rule.config.match;
  const where: string[] = [];
  if (rule.match.websocket) where.push('WebSocket');
  if (m.method !== undefined) where.push(m.method.join(','));
  where.push(m.path === undefined ? '/**' : m.path.join(' '));
  if (m.headers !== undefined) where.push(`headers(${Object.keys(m.headers).join(',')})`);
  if (m.query !== undefined) where.push(`query(${Object.keys(m.query).join(',')})`);
  if (m.clients !== undefined) where.push(`${m.clients.length} client(s)`);
  if (m.cohort !== undefined) where.push(`cohort ${Math.round(m.cohort * 100)}%`);
  if (m.status !== undefined) where.push(`upstream ${m.status.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',')}`);
  const how: string[] = [];
  if (!rule.enabled) how.push('disabled');
  if (rule.probability < 1) how.push(`p=${rule.probability}`);
  if (rule.firstAttempts !== null) how.push(`first ${rule.firstAttempts} attempt(s)`);
  if (rule.retriesOnly) how.push('retries only');
  const s = rule.schedule;
  if (s !== null) {
    if (s.after > 0) how.push(`after ${formatDuration(s.after)}`);
    if (s.every !== null) how.push(`on ${formatDuration(s.for as number)} every ${formatDuration(s.every)}`);
    else if (s.for !== null) how.push(`for ${formatDuration(s.for)}`);
    if (s.ramp !== null) how.push(`ramp ${s.ramp.from}→${s.ramp.to} over ${formatDuration(s.ramp.over)}`);
  }
  return `${rule.name}: ${fault} — ${where.join(' ')}${how.length > 0 ? ` — ${how.join(', ')}` : ''}`;
}

/** A few lines: name, description, rules, phases. */
export function describeProfile(p: CompiledProfile): string {
  const lines: string[] = [];
  lines.push(`${p.name} (hash ${p.hash}${p.seed === null ? '' : `, seed ${p.seed}`}${p.maxActive === null ? '' : `, maxActive ${p.maxActive}`}${p.headerFaults ? ', header faults on' : ''})`);
  if (p.description !== '') lines.push(...p.description.trim().split('\n').map((l) => `  ${l}`));
  if (p.rules.length === 0 && p.phases.length === 0) lines.push('  no rules: every request passes through untouched');
  if (p.rules.length > 0) {
    lines.push('rules:');
    for (const r of p.rules) lines.push(`  - ${describeRule(r)}`);
  }
  if (p.phases.length > 0) {
    const total = p.phases.reduce((a, ph) => a + ph.duration, 0);
    lines.push(`phases (${formatDuration(total)}${p.loop ? ', looping' : ', then the top-level rules only'}):`);
    let at = 0;
    for (const ph of p.phases) {
      lines.push(`  ${formatDuration(at).padStart(6)}  ${ph.name} (${formatDuration(ph.duration)})${ph.description === null ? '' : ` — ${ph.description}`}`);
      for (const [name, ov] of Object.entries(ph.overrides)) {
        const parts = [ov.enabled === undefined ? null : ov.enabled ? 'enabled' : 'disabled', ov.probability === undefined ? null : `p=${ov.probability}`].filter((x) => x !== null);
        lines.push(`            override ${name}: ${parts.join(', ')}`);
      }
      for (const r of ph.rules) lines.push(`            - ${describeRule(r)}`);
      at += ph.duration;
    }
  }
  return lines.join('\n');
}
