/**
 * The recording as HAR 1.2 (HTTP Archive), for the browser dev tools and HAR viewers: one entry per
 * exchange, without bodies (the recording never has them), the injected fault in a custom
 * `_aftershockFault` field (HAR allows custom fields starting with `_`).
 *
 * HAR is built from records, not from a report: `writeHar` streams entries as records arrive, so a
 * large recording never sits in memory. Entries keep the recording's order (exchange end); HAR
 * prefers start order but does not require it. URLs are rebuilt on the recording's target origin.
 */
import type { Writable } from 'node:stream';
import type { AnyRecord, ExchangeRecord } from '../../record/schema.js';
import { VERSION } from '../../version.js';

function queryString(q: string | null): Array<{ name: string; value: string }> {
  if (q === null || q === '') return [];
  return q
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const dec = (s: string): string => {
        try {
          return decodeURIComponent(s.replace(/\+/g, ' '));
        } catch {
          return s;
        }
      };
      return eq === -1 ? { name: dec(p), value: '' } : { name: dec(p.slice(0, eq)), value: dec(p.slice(eq + 1)) };
    });
}

function origin(target: string | null, ws: boolean): string {
  let base = 'http://aftershock.invalid';
  if (target !== null) {
    try {
      base = new URL(target).origin;
    } catch {
      /* keep the placeholder */
    }
  }
  return ws ? base.replace(/^http/, 'ws') : base;
}

/** One HAR entry for an exchange record. */
export function harEntry(r: ExchangeRecord, target: string | null): Record<string, unknown> {
  const ws = r.type === 'ws';
  const headers: Array<{ name: string; value: string }> = [];
  if (r.userAgent !== null) headers.push({ name: 'user-agent', value: r.userAgent });
  for (const [name, value] of Object.entries(r.headers ?? {})) if (typeof value === 'string') headers.push({ name, value });
  const duration = Math.max(0, r.end - r.ts);
  const ttfb = r.type === 'http' && r.ttfb !== null ? Math.min(r.ttfb, duration) : duration;
  const respHeaders: Array<{ name: string; value: string }> = [];
  if (r.retryAfter !== null) respHeaders.push({ name: 'retry-after', value: String(r.retryAfter) });
  const entry: Record<string, unknown> = {
    startedDateTime: new Date(r.ts).toISOString(),
    time: duration,
    request: {
      method: r.method,
      url: `${origin(target, ws)}${r.path}${r.query === null || r.query === '' ? '' : `?${r.query}`}`,
      httpVersion: 'HTTP/1.1',
      cookies: [],
      headers,
      queryString: queryString(r.query),
      headersSize: -1,
      bodySize: r.type === 'http' ? r.bytesIn : -1,
    },
    response: {
      status: r.status ?? 0,
      statusText: '',
      httpVersion: 'HTTP/1.1',
      cookies: [],
      headers: respHeaders,
      content: { size: r.bytesOut, mimeType: 'x-unknown' },
      redirectURL: '',
      headersSize: -1,
      bodySize: r.type === 'http' ? r.bytesOut : -1,
      ...(r.outcome === null ? {} : { _error: r.outcome }),
    },
    cache: {},
    timings: { send: 0, wait: ttfb, receive: Math.max(0, duration - ttfb) },
    connection: r.conn,
    _aftershockFault: r.fault,
    _aftershockFaults: r.faults ?? [],
    _aftershockId: r.id,
    _aftershockClient: r.client,
    _aftershockOutcome: r.outcome,
  };
  if (r.type === 'http' && r.upstreamStatus !== null) entry._aftershockUpstreamStatus = r.upstreamStatus;
  if (ws) entry._resourceType = 'websocket';
  return entry;
}

async function write(out: Writable, s: string): Promise<void> {
  if (!out.write(s)) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        out.off('drain', onDrain);
        out.off('error', onError);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onDrain = (): void => done();
      const onError = (err: Error): void => done(err);
      out.once('drain', onDrain);
      out.once('error', onError);
    });
  }
}

/**
 * Streams records into a HAR 1.2 document on `out` (backpressure respected). Resolves with the
 * number of entries written; does not end the stream.
 *
 * @example
 * await writeHar(readRecords('traffic.ndjson'), fs.createWriteStream('traffic.har'));
 */
export async function writeHar(records: AsyncIterable<AnyRecord> | Iterable<AnyRecord>, out: Writable): Promise<number> {
  let target: string | null = null;
  let count = 0;
  const creator = { name: 'aftershock', version: VERSION };
  await write(out, `{"log":{"version":"1.2","creator":${JSON.stringify(creator)},"pages":[],"entries":[`);
  for await (const r of records) {
    if (r.type === 'header') {
      target ??= r.target;
      continue;
    }
    if (r.type !== 'http' && r.type !== 'ws') continue;
    await write(out, `${count === 0 ? '\n' : ',\n'}${JSON.stringify(harEntry(r, target))}`);
    count++;
  }
  await write(out, '\n]}}\n');
  return count;
}
