/**
 * A hand-built fault context for unit tests: our own interface (HttpFaultContext / WsFaultContext),
 * filled with recorders instead of sockets. Not a mock of http, net or ws — the wire tests cover
 * those with real sockets.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { HttpFaultContext, MessageDirection, RequestFacts, WsMessageContext, WsUpgradeContext } from '../../src/faults/types.js';
import { SeededRandom, STREAM } from '../../src/rules/random.js';

export interface Recorded {
  responses: Array<{ status: number; headers: OutgoingHttpHeaders; body: string }>;
  calls: string[];
  closes: Array<{ code: number; reason: string }>;
}

export interface FakeContext extends HttpFaultContext, WsMessageContext, WsUpgradeContext {
  readonly rec: Recorded;
  /** Ends the exchange: aborts the signal and runs the onDone callbacks. */
  finish(): void;
  respond(status: number, headers: OutgoingHttpHeaders, body?: string | Buffer): void;
}

export function fakeFacts(over: Partial<RequestFacts> = {}): RequestFacts {
  return { method: 'GET', path: '/x', query: null, headers: {}, clientKey: 'client-1', websocket: false, ...over };
}

export function fakeContext(opts: { facts?: Partial<RequestFacts>; now?: () => number; seed?: number } = {}): FakeContext {
  const ac = new AbortController();
  const done: Array<() => void> = [];
  let finished = false;
  const rec: Recorded = { responses: [], calls: [], closes: [] };
  const random = new SeededRandom(opts.seed ?? 1).next;
  const messages = { in: new SeededRandom(opts.seed ?? 1, STREAM.messagesIn).next, out: new SeededRandom(opts.seed ?? 1, STREAM.messagesOut).next };
  const ctx = {
    rule: 'rule-under-test',
    facts: fakeFacts(opts.facts),
    random,
    messageRandom: (dir: MessageDirection) => messages[dir],
    now: opts.now ?? Date.now,
    signal: ac.signal,
    req: {} as never,
    res: {} as never,
    rec,
    sleep(ms: number): Promise<boolean> {
      if (ac.signal.aborted) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const onAbort = (): void => {
          clearTimeout(t);
          resolve(false);
        };
        const t = Number.isFinite(ms)
          ? setTimeout(() => {
              ac.signal.removeEventListener('abort', onAbort);
              resolve(true);
            }, ms)
          : undefined;
        ac.signal.addEventListener('abort', onAbort, { once: true });
      });
    },
    onDone(fn: () => void): void {
      if (finished) fn();
      else done.push(fn);
    },
    respond(status: number, headers: OutgoingHttpHeaders, body?: string | Buffer): void {
      rec.responses.push({ status, headers: { ...headers }, body: body === undefined ? '' : body.toString() });
    },
    reset: () => void rec.calls.push('reset'),
    close: () => void rec.calls.push('close'),
    resetAfterFlush: () => void rec.calls.push('resetAfterFlush'),
    discardBody: () => void rec.calls.push('discardBody'),
    closeClient: (code: number, reason: string) => void rec.closes.push({ code, reason }),
    freeze: () => void rec.calls.push('freeze'),
    finish(): void {
      if (finished) return;
      finished = true;
      ac.abort();
      for (const fn of done.splice(0)) fn();
    },
  };
  return ctx as FakeContext;
}
