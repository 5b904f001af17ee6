/**
 * The demo's upstream: a small message service with a real, finite capacity.
 *
 * The retry-storm demo only tells the truth if the service behind the proxy can actually be
 * overloaded, so this is not a canned responder. Every API request needs a worker slot for a few
 * milliseconds of (asynchronous) work; there are `concurrency` slots and a bounded FIFO queue in
 * front of them:
 *
 *   request ──▶ slot free? ──yes──▶ work (5-20 ms × overload factor) ──▶ 2xx
 *                   │ no
 *                   ▼
 *               queue full? ──yes──▶ 503 + Retry-After (shed at the door, cheap)
 *                   │ no
 *                   ▼
 *               wait in the queue (FIFO) ──▶ a slot frees ──▶ work ──▶ 2xx
 *
 * Two things make overload feed itself, as it does in real servers (the metastable-failure
 * papers' "sustaining effects"):
 * - work gets slower as the queue grows (`overloadSlowdown`: cache misses, GC, lock contention),
 *   so capacity drops exactly when it is needed most;
 * - a request whose client has gone away (timed out) is still worked on when it reaches a slot
 *   (`dropAbandoned: false`, the default), as most thread-pool servers do: that work is wasted,
 *   and the client's retry queues up behind it.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

/** Options of `startMessageService`. */
export interface MessageServiceOptions {
  /** Interface to listen on; default `127.0.0.1` (loopback only). */
  host?: string;
  /** Port; default 0 (a free port). */
  port?: number;
  /** Requests worked on at once; default 4. */
  concurrency?: number;
  /** Requests allowed to wait for a slot; beyond that the service answers 503; default 64. */
  queueLimit?: number;
  /** Work per request in ms, drawn uniformly from [min, max]; default [5, 20]. */
  workMs?: readonly [number, number];
  /** Work is multiplied by `1 + overloadSlowdown × queued / queueLimit`; default 2 (3× when full). */
  overloadSlowdown?: number;
  /** Seconds sent in Retry-After with a 503; default 1. */
  retryAfterSeconds?: number;
  /** Skip queued requests whose client went away instead of working on them; default false. */
  dropAbandoned?: boolean;
  /** Random source in [0, 1) for work times; default Math.random. */
  random?: () => number;
}

/** Counters since start (or since `resetStats`). */
export interface MessageServiceStats {
  /** API requests received. */
  received: number;
  /** Requests worked on to the end (wasted ones included). */
  completed: number;
  /** Requests refused with 503 because the queue was full. */
  rejected: number;
  /** Requests worked on although their client had already gone away (wasted work). */
  wasted: number;
  /** Requests dropped from the queue because their client went away (`dropAbandoned`). */
  dropped: number;
  /** Requests being worked on now. */
  active: number;
  /** Requests waiting for a slot now. */
  queued: number;
  /** The longest the queue has been. */
  maxQueued: number;
}

/** A running message service. */
export interface MessageService {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  readonly port: number;
  stats(): MessageServiceStats;
  resetStats(): void;
  close(): Promise<void>;
}

interface Job {
  req: IncomingMessage;
  res: ServerResponse;
  run: () => Promise<void>;
}

const MAX_BODY = 64 * 1024;
const MAX_MESSAGES = 10_000;

/**
 * Starts the message service on loopback.
 *
 * Routes: `POST /v1/messages` (JSON `{to, text}` → 201 `{id}`), `GET /v1/messages/:id`
 * (200 or 404), `GET /v1/profile` (200), and `GET /healthz` (no work, never queued).
 *
 * @example
 * const svc = await startMessageService({ concurrency: 2, queueLimit: 4 });
 * const res = await fetch(`${svc.url}/v1/profile`);
 * console.log(res.status, svc.stats());
 * await svc.close();
 */
export async function startMessageService(options: MessageServiceOptions = {}): Promise<MessageService> {
  const concurrency = options.concurrency ?? 4;
  const queueLimit = options.queueLimit ?? 64;
  const [workMin, workMax] = options.workMs ?? [5, 20];
  const slowdown = options.overloadSlowdown ?? 2;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const dropAbandoned = options.dropAbandoned === true;
  const random = options.random ?? Math.random;
  if (!(concurrency >= 1) || !(queueLimit >= 0) || !(workMin >= 0 && workMax >= workMin)) {
    throw new RangeError('message service: concurrency >= 1, queueLimit >= 0 and 0 <= workMs[0] <= workMs[1]');
  }

  const messages = new Map<string, { id: string; to: string; text: string }>();
  const queue: Job[] = [];
  let queueHead = 0;
  let active = 0;
  const counters = { received: 0, completed: 0, rejected: 0, wasted: 0, dropped: 0, maxQueued: 0 };
  const queued = (): number => queue.length - queueHead;

  const workTime = (): number => {
    const base = workMin + (workMax - workMin) * random();
    return base * (1 + (slowdown * queued()) / Math.max(1, queueLimit));
  };
  const work = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, workTime()));

  const gone = (job: Job): boolean => job.res.destroyed || job.req.socket.destroyed;

  const pump = (): void => {
    while (active < concurrency && queued() > 0) {
      const job = queue[queueHead] as Job;
      queue[queueHead++] = undefined as unknown as Job;
      if (queueHead > 1024 && queueHead * 2 > queue.length) {
        queue.splice(0, queueHead);
        queueHead = 0;
      }
      if (gone(job)) {
        if (dropAbandoned) {
          counters.dropped++;
          continue;
        }
        counters.wasted++;
      }
      active++;
      job
        .run()
        .catch(() => undefined)
        .finally(() => {
          active--;
          counters.completed++;
          pump();
        });
    }
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void => {
    if (res.destroyed || res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  /** Admits a request to the worker pool, or sheds it with 503 when the queue is full. */
  const admit = (req: IncomingMessage, res: ServerResponse, handler: () => Promise<void>): void => {
    counters.received++;
    if (active >= concurrency && queued() >= queueLimit) {
      counters.rejected++;
      send(res, 503, { error: 'overloaded', message: 'the message service is at capacity; retry later' }, { 'retry-after': retryAfter });
      return;
    }
    queue.push({ req, res, run: handler });
    counters.maxQueued = Math.max(counters.maxQueued, queued());
    pump();
  };

  const readBody = (req: IncomingMessage): Promise<string | null> =>
    new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      req.on('end', () => resolve(size > MAX_BODY ? null : Buffer.concat(chunks).toString('utf8')));
      req.on('error', () => resolve(null));
      req.on('aborted', () => resolve(null));
    });

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    if (path === '/healthz') {
      send(res, 200, { ok: true });
      return;
    }
    if (method === 'POST' && path === '/v1/messages') {
      // Read the body first (the socket does that, not a worker), then queue the work.
      void readBody(req).then((raw) => {
        if (raw === null) {
          send(res, 413, { error: 'too-large', message: 'bodies are limited to 64 KiB' });
          return;
        }
        admit(req, res, async () => {
          await work();
          let parsed: { to?: unknown; text?: unknown };
          try {
            parsed = JSON.parse(raw === '' ? '{}' : raw) as { to?: unknown; text?: unknown };
          } catch {
            send(res, 400, { error: 'bad-json', message: 'send a JSON object {to, text}' });
            return;
          }
          const id = randomUUID();
          messages.set(id, { id, to: String(parsed.to ?? ''), text: String(parsed.text ?? '') });
          if (messages.size > MAX_MESSAGES) messages.delete(messages.keys().next().value as string);
          send(res, 201, { id }, { location: `/v1/messages/${id}` });
        });
      });
      return;
    }
    const m = /^\/v1\/messages\/([^/]+)$/.exec(path);
    if (method === 'GET' && m !== null) {
      admit(req, res, async () => {
        await work();
        const msg = messages.get(decodeURIComponent(m[1] as string));
        if (msg === undefined) send(res, 404, { error: 'not-found', message: 'no such message' });
        else send(res, 200, msg);
      });
      return;
    }
    if (method === 'GET' && path === '/v1/profile') {
      admit(req, res, async () => {
        await work();
        send(res, 200, { name: 'demo user', devices: 1 });
      });
      return;
    }
    req.resume();
    send(res, 404, { error: 'not-found', message: `no route ${method} ${path}` });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    stats: () => ({ ...counters, active, queued: queued() }),
    resetStats: () => {
      counters.received = counters.completed = counters.rejected = counters.wasted = counters.dropped = 0;
      counters.maxQueued = queued();
    },
    close: () =>
      new Promise<void>((resolve) => {
        queue.length = 0;
        queueHead = 0;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
