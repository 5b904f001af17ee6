/**
 * The recording as HAR 1.2 (HTTP Archive), for the browser dev tools and HAR viewers: one entry per
 * exchange, without bodies (the recording never has them), the injected fault in a custom
 * `_aftershockFault` field (HAR allows custom fields starting with `_`).
 *
 * HAR is built from records, not from a report: `writeHar` streams entries as records arrive, so a
 * large recording never sits in memory. Entries keep the recording's order (exchange end); HAR
 * prefers start order but does not require it. URLs are rebuilt on the target origin of the
 * recording each exchange came from.
 */
import type { Writable } from 'node:stream';
import type { AnyRecord, ExchangeRecord } from '../../record/schema.js';
import { VERSION } from '../../version.js';

function queryString(q: string | null | undefined): Array<{ name: string; value: string }> {
  if (q == null || q === '') return [];
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

/**
 * One HAR entry for an exchange record. Older or hand-written recordings may lack the optional
 * fields (the reader only checks the types of those present): each has a default here.
 */
export function harEntry(r: ExchangeRecord, target: string | null): Record<string, unknown> {
  const ws = r.type === 'ws';
  const headers: Array<{ name: string; value: string }> = [];
  if (r.userAgent != null) headers.push({ name: 'user-agent', value: r.userAgent });
  for (const [name, value] of Object.entries(r.headers ?? {})) if (typeof value === 'string') headers.push({ name, value });
  const duration = Math.max(0, r.end - r.ts);
  const ttfb = r.type === 'http' && typeof r.ttfb === 'number' ? Math.min(r.ttfb, duration) : duration;
  const respHeaders: Array<{ name: string; value: string }> = [];
  if (r.retryAfter != null) respHeaders.push({ name: 'retry-after', value: String(r.retryAfter) });
  const bytesIn = typeof r.bytesIn === 'number' ? r.bytesIn : -1;
  const bytesOut = typeof r.bytesOut === 'number' ? r.bytesOut : -1;
  const outcome = r.outcome ?? null;
  const entry: Record<string, unknown> = {
    startedDateTime: new Date(r.ts).toISOString(),
    time: duration,
    request: {
      method: r.method ?? 'GET',
      url: requestUrl(origin(target, ws), r.path, r.query),
      httpVersion: 'HTTP/1.1',
      cookies: [],
      headers,
      queryString: queryString(r.query),
      headersSize: -1,
      bodySize: r.type === 'http' ? bytesIn : -1,
      // A request target the proxy refused (absolute-form, CONNECT's authority, `*`) as it came.
      ...(typeof r.path === 'string' && r.path.startsWith('/') ? {} : { _aftershockRequestTarget: r.path }),
    },
    response: {
      status: r.status ?? 0,
      statusText: '',
      httpVersion: 'HTTP/1.1',
      cookies: [],
      headers: respHeaders,
      content: { size: Math.max(0, bytesOut), mimeType: 'x-unknown' },
      redirectURL: '',
      headersSize: -1,
      bodySize: r.type === 'http' ? bytesOut : -1,
      ...(outcome === null ? {} : { _error: outcome }),
    },
    cache: {},
    timings: { send: 0, wait: ttfb, receive: Math.max(0, duration - ttfb) },
    connection: r.conn ?? '',
    _aftershockFault: r.fault ?? null,
    _aftershockFaults: r.faults ?? [],
    _aftershockId: r.id,
    _aftershockClient: r.client,
    _aftershockOutcome: outcome,
  };
  if (r.type === 'http' && r.upstreamStatus != null) entry._aftershockUpstreamStatus = r.upstreamStatus;
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
export async function writeHar(
  records: AsyncIterable<AnyRecord | { readonly record: AnyRecord }> | Iterable<AnyRecord | { readonly record: AnyRecord }>,
  out: Writable,
): Promise<number> {
  // Each exchange on its own proxy's target: a record's id starts with its recorder's instance
  // (`<instance>-<n>`), which its header names (several recordings merged, a demo's two proxies).
  const targets = new Map<string, string | null>();
  let target: string | null = null;
  let count = 0;
  const creator = { name: 'aftershock', version: VERSION };
  await write(out, `{"log":{"version":"1.2","creator":${JSON.stringify(creator)},"pages":[],"entries":[`);
  for await (const item of records) {
    // mergeRecordings yields { record, file }: taken as the record (it wrote an empty HAR).
    const r = 'record' in item && typeof item.record === 'object' && item.record !== null ? item.record : (item as AnyRecord);
    if (r.type === 'header') {
      target = r.target ?? null;
      if (typeof r.instance === 'string') targets.set(r.instance, target);
      continue;
    }
    if (r.type !== 'http' && r.type !== 'ws') continue;
    const dash = typeof r.id === 'string' ? r.id.lastIndexOf('-') : -1;
    const own = dash > 0 ? targets.get(r.id.slice(0, dash)) : undefined;
    await write(out, `${count === 0 ? '\n' : ',\n'}${JSON.stringify(harEntry(r, own === undefined ? target : own))}`);
    count++;
  }
  await write(out, '\n]}}\n');
  return count;
}

/**
 * The entry's URL: the target's origin and the path, for an origin-form path; an absolute-form
 * target (refused, recorded as sent, userinfo redacted) as it is; any other target (CONNECT's
 * `host:port`, `*`, an unparsable line) as the origin's root, the target kept beside it.
 */
function requestUrl(base: string, path: unknown, query: unknown): string {
  const p = typeof path === 'string' ? path : '';
  const q = query == null || query === '' ? '' : `?${String(query)}`;
  if (p.startsWith('/')) return `${base}${p}${q}`;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) return `${p}${q}`;
  return `${base}/`;
}
