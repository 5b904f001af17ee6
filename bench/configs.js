// The profiles and proxy-child configurations the benchmark scripts share.
import path from 'node:path';

const neverRules = Array.from(
  { length: 20 },
  (_, i) => `  - name: never-${i + 1}
    match: { path: /never/${i + 1}/** }
    fault: { type: http-error, status: 503 }`,
).join('\n');

/** 20 rules whose paths never match the bench's requests. */
export const PROFILE_20 = `name: twenty-rules\nrules:\n${neverRules}\n`;
/** The same 20 rules plus a 503 on 10 % of all requests. */
export const PROFILE_20_PLUS_10PCT = `name: twenty-rules-and-some-503\nrules:\n${neverRules}
  - name: some-503
    probability: 0.1
    fault: { type: http-error, status: 503 }\n`;
/** A fixed 100 ms latency on every request. */
export const PROFILE_LATENCY = `name: latency-100ms
rules:
  - name: slow
    fault: { type: latency, delay: 100ms }\n`;
/** A WebSocket message delay whose path never matches. */
export const PROFILE_WS_NEVER = `name: ws-delay-never
rules:
  - name: ws-never
    match: { websocket: true, path: /never }
    fault: { type: ws-delay, delay: 100ms }\n`;

/**
 * proxy-child configurations by name; `tmp` is a folder for recordings.
 * @returns {Record<string, (target: string) => object>}
 */
export function proxyConfigs(tmp) {
  const rec = (name) => path.join(tmp, `${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.ndjson`);
  return {
    baseline: (target) => ({ kind: 'baseline', target }),
    pass: (target) => ({ kind: 'aftershock', target, options: { liveAnalysis: false } }),
    rec: (target) => ({ kind: 'aftershock', target, options: { liveAnalysis: false, record: rec('rec') } }),
    'rec-live': (target) => ({ kind: 'aftershock', target, options: { liveAnalysis: true, record: rec('rec-live') } }),
    'rec-live-20': (target) => ({ kind: 'aftershock', target, options: { liveAnalysis: true, record: rec('rec-live-20') }, profileYaml: PROFILE_20 }),
    'fault-10': (target) => ({ kind: 'aftershock', target, options: { liveAnalysis: true, record: rec('fault-10') }, profileYaml: PROFILE_20_PLUS_10PCT }),
    latency: (target) => ({ kind: 'aftershock', target, options: { liveAnalysis: true, record: rec('latency') }, profileYaml: PROFILE_LATENCY }),
    'ws-never': (target) => ({ kind: 'aftershock', target, options: { liveAnalysis: true, record: rec('ws-never') }, profileYaml: PROFILE_WS_NEVER }),
  };
}
