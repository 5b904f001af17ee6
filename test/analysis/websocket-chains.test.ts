/**
 * WebSocket reconnects as chains (spec §3.4), on cases a chat app meets: two sockets of one client
 * on one path told apart by their query (chat and presence), a slow handshake that must not count
 * as time the socket was open, and the live attempt tracker agreeing with the analysis.
 */
import { describe, expect, it } from 'vitest';
import { createAnalyzer } from '../../src/analysis/index.js';
import type { RequestFacts } from '../../src/faults/types.js';
import type { AnyRecord, WsRecord } from '../../src/record/schema.js';
import { AttemptTracker, createRuleEngine, parseProfile } from '../../src/rules/index.js';
import { T0, header } from '../fixtures/make-fixtures.js';

let n = 0;
function ws(p: { ts: number; end: number; query?: string | null; ttfb?: number | null; status?: number; closeCode?: number | null }): WsRecord {
  return {
    v: 1,
    type: 'ws',
    id: `w${++n}`,
    ts: p.ts,
    end: p.end,
    client: 'c1',
    ip: '10.0.0.1',
    conn: `k${n}`,
    method: 'GET',
    path: '/chat',
    query: p.query ?? null,
    status: p.status ?? 101,
    outcome: null,
    upstreamStatus: null,
    bytesIn: 0,
    bytesOut: 0,
    ttfb: p.ttfb ?? 1,
    duration: p.end - p.ts,
    fault: null,
    faults: [],
    retryAfter: null,
    bodyHash: null,
    userAgent: 'chat-app/1.0',
    headers: {},
    error: null,
    protocol: null,
    messagesIn: 0,
    messagesOut: 0,
    closeCode: p.closeCode ?? 1006,
    closeReason: null,
    closedBy: 'upstream',
  } as unknown as WsRecord;
}

function report(records: AnyRecord[]) {
  const a = createAnalyzer({});
  a.ingest(header('ws'));
  for (const r of [...records].sort((x, y) => (x as WsRecord).end - (y as WsRecord).end)) a.ingest(r);
  return a.report();
}

describe('WebSocket chains', () => {
  it('a presence socket reconnecting 12 times next to a long-lived chat socket on the same path is a reconnect chain, not hedges of the chat socket', () => {
    const rs: AnyRecord[] = [ws({ ts: T0, end: T0 + 4000, query: 'role=chat', closeCode: 1000 })];
    for (let i = 0; i < 12; i++) rs.push(ws({ ts: T0 + 100 + i * 310, end: T0 + 100 + i * 310 + 300, query: 'role=presence' }));
    const r = report(rs);
    expect(r.totals.hedges).toBe(0);
    expect(r.totals.retries).toBe(11);
    expect(r.totals.unboundedChains).toBe(1);
  });

  it('a per-connection id in the query (Socket.IO sid, SignalR id, a token) does not split a reconnect storm; the live tracker keys sockets the same way', () => {
    const rs: AnyRecord[] = [];
    for (let i = 0; i < 12; i++) rs.push(ws({ ts: T0 + i * 310, end: T0 + i * 310 + 300, query: `EIO=4&transport=websocket&sid=s${i}&token=t${i}` }));
    const r = report(rs);
    expect(r.totals.logicalRequests).toBe(1);
    expect(r.totals.retries).toBe(11);
    const key = (query: string): number => AttemptTracker.keyOf({ method: 'GET', path: '/socket.io/', query, headers: {}, clientKey: 'c1', websocket: true });
    expect(key('EIO=4&transport=websocket&sid=a')).toBe(key('sid=b&transport=websocket&EIO=4&id=9'));
    expect(key('role=chat')).not.toBe(key('role=presence'));
  });

  it('a connection open less than 5 s after a slow handshake is a failure: its reconnects are retries', () => {
    // The upstream answers each handshake after 3 s; each socket is then open 3 s (6 s in all).
    const rs: AnyRecord[] = [0, 1, 2].map((i) => ws({ ts: T0 + i * 6100, end: T0 + i * 6100 + 6000, ttfb: 3000 }));
    const r = report(rs);
    expect(r.totals.logicalRequests).toBe(1);
    expect(r.totals.retries).toBe(2);
  });

  it('the live attempt tracker counts a socket open from its 101, not from the decision (firstAttempts)', () => {
    let t = T0;
    const engine = createRuleEngine({ profile: parseProfile('rules:\n  - name: r\n    firstAttempts: 2\n    match: { websocket: true }\n    fault: { type: ws-reject, status: 503 }', null), now: () => t });
    const f: RequestFacts = { method: 'GET', path: '/chat', query: null, headers: {}, clientKey: 'c1', websocket: true };
    const attempt = (handshakeMs: number, openMs: number): number => {
      const d = engine.decide(f, { now: t });
      const refused = d.faults.length;
      t += handshakeMs;
      const openedAt = t;
      t += refused > 0 ? 0 : openMs;
      engine.settle(d, { status: refused > 0 ? 503 : 101, outcome: null, openedAt: refused > 0 ? null : openedAt });
      t += 100;
      return refused;
    };
    expect([attempt(0, 0), attempt(0, 0)]).toEqual([1, 1]);
    // Let through; open 3 s after a 3 s handshake: not a success, so the chain goes on (no new first attempts).
    expect(attempt(3000, 3000)).toBe(0);
    expect(attempt(0, 0)).toBe(0);
  });
});
