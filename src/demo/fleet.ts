/**
 * A fleet of demo clients: `clients` app instances that each send one logical request every
 * ~`intervalMs` (the organic load, identical for every policy) and retry failures by their
 * `RetryPolicy`. Real HTTP on loopback through a keep-alive agent per client, with a timeout per
 * attempt.
 *
 * Each logical request is its own chain; a client does not wait for one chain to end before the
 * next tick starts another (an app's message sends are independent jobs). That is what lets a
 * naive fleet's retries pile up: the organic load stays the same while every chain multiplies it.
 *
 * Identity: every attempt carries `x-client-id: <kind>-<n>` and `User-Agent: <kind>-client/1.0`,
 * so the proxy's analysis sees one client per app instance and one client type per fleet.
 */
import http from 'node:http';
import { createRandom, parseRetryAfter, type Failure, type RetryPolicy } from './retry-policy.js';

/** Options of `startFleet`. */
export interface FleetOptions {
  /** `naive` or `careful`: names the clients and their User-Agent. */
  readonly kind: 'naive' | 'careful';
  /** Base URL the clients talk to (the proxy). */
  readonly target: string;
  readonly clients: number;
  /** Mean time between two logical requests of one client, in ms (±20 % jitter). */
  readonly intervalMs: number;
  /** Per-attempt timeout in ms. */
  readonly timeoutMs: number;
  /** One policy per client. */
  readonly policy: (client: number, random: () => number) => RetryPolicy;
  readonly seed: number;
  /**
   * The app layer above the HTTP client, or none. With an outbox, a message whose send gave up
   * is kept (at most `max`, oldest dropped) and the whole outbox is re-sent at once, concurrently,
   * on the next successful response ("the network is back"), at most every `flushEveryMs`.
   * That is a second layer of retries on top of the client's own: the naive app's job queue.
   */
  readonly outbox?: { readonly max: number; readonly flushEveryMs: number };
}

/** Counters since the fleet started (client-side view). */
export interface FleetStats {
  /** Logical requests started (organic load). */
  logical: number;
  /** Attempts sent (offered load). */
  attempts: number;
  retries: number;
  /** Sends (first or from the outbox) that ended in a 2xx (goodput). */
  succeeded: number;
  /** Sends that gave up. */
  failed: number;
  /** Attempts that timed out at the client. */
  timeouts: number;
  /** Attempts in flight now. */
  inFlight: number;
  /** Messages re-sent from the outbox (app-layer retries; their attempts count as retries). */
  resends: number;
  /** Messages dropped because the outbox was full. */
  dropped: number;
}

/** A running fleet. */
export interface Fleet {
  readonly kind: 'naive' | 'careful';
  stats(): FleetStats;
  /** Stops new requests and cancels waits and in-flight attempts. */
  stop(): Promise<void>;
}

interface Message {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body: string | null;
  readonly headers: Readonly<Record<string, string>>;
  /** Re-sent from the outbox: every attempt of it is a retry. */
  readonly resend: boolean;
}

interface AttemptResult {
  ok: boolean;
  status: number | null;
  body: string;
  failure: Failure | null;
}

const MAX_RESPONSE = 64 * 1024;

/**
 * Starts a fleet; it runs until `stop()`.
 *
 * @example
 * const fleet = startFleet({ kind: 'careful', target: proxy.url, clients: 10, intervalMs: 400,
 *   timeoutMs: 1000, seed: 1, policy: (_i, random) => createCarefulPolicy({ random }) });
 * await new Promise((r) => setTimeout(r, 5000));
 * await fleet.stop();
 * console.log(fleet.stats());
 */
export function startFleet(options: FleetOptions): Fleet {
  const base = new URL(options.target);
  const stats: FleetStats = { logical: 0, attempts: 0, retries: 0, succeeded: 0, failed: 0, timeouts: 0, inFlight: 0, resends: 0, dropped: 0 };
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const sleepers = new Set<(full: boolean) => void>();
  const cancels = new Set<() => void>();
  const agents: http.Agent[] = [];
  const chains = new Set<Promise<unknown>>();
  const track = (chain: Promise<unknown>): void => {
    chains.add(chain);
    void chain.finally(() => chains.delete(chain));
  };
  const app = options.outbox ?? undefined;

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  /** Waits ms; resolves false at once when the fleet stops. */
  const sleep = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (stopped) return resolve(false);
      if (ms <= 0) return resolve(true);
      const wake = (full: boolean): void => {
        clearTimeout(t);
        timers.delete(t);
        sleepers.delete(wake);
        resolve(full);
      };
      const t = setTimeout(() => wake(true), ms);
      timers.add(t);
      sleepers.add(wake);
    });

  const attempt = (agent: http.Agent, clientId: string, userAgent: string, method: string, path: string, body: string | null, headers: Record<string, string>): Promise<AttemptResult> =>
    new Promise((resolve) => {
      let settled = false;
      const done = (r: AttemptResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        cancels.delete(cancel);
        stats.inFlight--;
        resolve(r);
      };
      stats.inFlight++;
      const req = http.request(
        {
          host: base.hostname,
          port: base.port,
          method,
          path,
          agent,
          headers: {
            'x-client-id': clientId,
            'user-agent': userAgent,
            accept: 'application/json',
            ...(body === null ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size <= MAX_RESPONSE) chunks.push(c);
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const text = Buffer.concat(chunks).toString('utf8');
            if (status >= 200 && status < 300) done({ ok: true, status, body: text, failure: null });
            else done({ ok: false, status, body: text, failure: { kind: 'status', status, retryAfterMs: parseRetryAfter(res.headers['retry-after'], Date.now()) } });
          });
          res.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, status: null, body: '', failure: { kind: 'network', code: err.code ?? 'ERR' } }));
        },
      );
      const timer = setTimeout(() => {
        stats.timeouts++;
        done({ ok: false, status: null, body: '', failure: { kind: 'timeout' } });
        req.destroy();
      }, options.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, status: null, body: '', failure: { kind: 'network', code: err.code ?? 'ERR' } }));
      const cancel = (): void => {
        done({ ok: false, status: null, body: '', failure: { kind: 'network', code: 'STOPPED' } });
        req.destroy();
      };
      cancels.add(cancel);
      req.on('close', () => cancels.delete(cancel));
      req.end(body ?? undefined);
    });

  for (let i = 0; i < options.clients; i++) {
    const random = createRandom(options.seed * 7919 + i * 104729 + (options.kind === 'naive' ? 1 : 2));
    const policy = options.policy(i, random);
    const clientId = `${options.kind}-${i + 1}`;
    const userAgent = `${options.kind}-client/1.0`;
    const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets: Infinity, maxFreeSockets: 16 });
    agents.push(agent);
    const sent: string[] = [];
    const outbox: Message[] = [];
    let lastFlush = Number.NEGATIVE_INFINITY;
    let seq = 0;

    /** Sends one message (or fetch) through the retry policy; true when it got a 2xx. */
    const send = async (msg: Message): Promise<boolean> => {
      for (let attempts = 1; ; attempts++) {
        if (stopped) return false;
        stats.attempts++;
        if (attempts > 1 || msg.resend) stats.retries++;
        const r = await attempt(agent, clientId, userAgent, msg.method, msg.path, msg.body, msg.headers);
        if (r.ok) {
          stats.succeeded++;
          if (msg.method === 'POST') {
            try {
              const id = (JSON.parse(r.body) as { id?: unknown }).id;
              if (typeof id === 'string' && sent.length < 32) sent.push(id);
            } catch {
              /* a body we cannot read is still a success */
            }
          }
          flush();
          return true;
        }
        if (stopped) return false;
        const delay = policy.nextDelay(attempts, r.failure as Failure);
        if (delay === null || !(await sleep(delay))) {
          stats.failed++;
          if (app !== undefined && msg.method === 'POST') {
            outbox.push({ ...msg, resend: true });
            if (outbox.length > app.max) {
              outbox.shift();
              stats.dropped++;
            }
          }
          return false;
        }
      }
    };

    /** The app layer (naive only): a success means "the network is back": re-send the whole outbox. */
    const flush = (): void => {
      if (app === undefined || outbox.length === 0 || stopped) return;
      const now = Date.now();
      if (now - lastFlush < app.flushEveryMs) return;
      lastFlush = now;
      for (const msg of outbox.splice(0)) {
        stats.resends++;
        track(send(msg));
      }
    };

    /** One logical request: a POST of a new message, or a GET of one sent earlier. */
    const logical = (): Promise<boolean> => {
      const n = ++seq;
      policy.onRequest();
      stats.logical++;
      const fetchId = sent.length > 0 && random() < 0.3 ? sent.shift() : undefined;
      if (fetchId !== undefined) return send({ method: 'GET', path: `/v1/messages/${fetchId}`, body: null, headers: {}, resend: false });
      const body = JSON.stringify({ to: `user-${Math.floor(random() * 1000)}`, text: `message ${n} from ${clientId}` });
      return send({ method: 'POST', path: '/v1/messages', body, headers: policy.idempotencyKeys ? { 'idempotency-key': `${clientId}-${n}` } : {}, resend: false });
    };

    const tick = (): void => {
      if (stopped) return;
      track(logical());
      later(options.intervalMs * (0.8 + 0.4 * random()), tick);
    };
    // Spread the clients' first requests over one interval so they do not start as a herd.
    later(options.intervalMs * random(), tick);
  }

  return {
    kind: options.kind,
    stats: () => ({ ...stats }),
    stop: async () => {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const wake of [...sleepers]) wake(false);
      for (const cancel of [...cancels]) cancel();
      await Promise.allSettled([...chains]);
      for (const a of agents) a.destroy();
    },
  };
}
