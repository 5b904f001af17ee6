/**
 * GET /metrics: Prometheus text through prom-client, on a registry of this proxy's own (several
 * proxies can run in one process; prom-client's global registry would mix them).
 *
 * Two kinds of numbers, kept cheap:
 *   - per record (one listener on the recorder, a few map look-ups per exchange): requests by
 *     route/method/status, outcomes, injected faults by rule and type, latency histograms,
 *     WebSocket connections and reconnects;
 *   - at scrape time (`collect()`): rule state, connections, recording written/failed, and the
 *     live analysis' retries and amplification, computed once per scrape from `proxy.report()`.
 *
 * Process metrics (`process_*`, `nodejs_*`) describe the process, not a proxy, so they live in one
 * lazily created registry per process, appended to every proxy's output: prom-client's default
 * collectors install a GC observer and an event-loop monitor that are never removed, and one set
 * per proxy would leak with every proxy a test or an embedding program starts and stops.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ProxyHandle } from '../proxy/handle.js';
import type { AnyRecord, HttpRecord, WsRecord } from '../record/schema.js';
import { VERSION } from '../version.js';
import { createRouteLabeler, OTHER_ROUTE } from './route-label.js';
import type { LiveTotals } from '../analysis/index.js';

/** Seconds; from a fast local hop to a hung upstream. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Seconds a WebSocket connection stayed open. */
const WS_BUCKETS = [0.1, 1, 5, 15, 60, 300, 900, 3600];
/** A WebSocket that closed sooner than this and came back within RECONNECT_WINDOW_MS was a reconnect (spec §3.4). */
const SHORT_LIVED_MS = 5_000;
const RECONNECT_WINDOW_MS = 120_000;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const MAX_RULE_LABELS = 500;

export interface AdminMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The exposition text: this proxy's metrics, then the process metrics. */
  render(): Promise<string>;
  /** Stops counting (the recorder keeps its listeners; this one becomes a no-op). */
  close(): void;
}

let processRegistry: Registry | null = null;

function sharedProcessRegistry(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * Creates the metrics of one proxy and starts counting its records.
 *
 * @example
 * const metrics = createAdminMetrics(proxy);
 * res.setHeader('content-type', metrics.contentType);
 * res.end(await metrics.render());
 */
export function createAdminMetrics(proxy: ProxyHandle, opts: { maxRoutes?: number } = {}): AdminMetrics {
  const registry = new Registry();
  // With `run --workers N` each worker serves its own /metrics: every series says which worker it
  // counts (a scrape of one port is 1/N of the traffic).
  const worker = proxy.stats().worker;
  if (worker !== null) registry.setDefaultLabels({ worker: String(worker.index) });
  const registers = [registry];
  const routes = createRouteLabeler(opts.maxRoutes ?? 200);
  const ruleLabels = new Set<string>();
  const ruleLabel = (rule: string): string => {
    if (ruleLabels.has(rule)) return rule;
    if (ruleLabels.size >= MAX_RULE_LABELS) return OTHER_ROUTE;
    ruleLabels.add(rule);
    return rule;
  };

  // ---- counted per record ------------------------------------------------------------------
  const requests = new Counter({
    name: 'aftershock_requests_total',
    help: 'HTTP exchanges by route (ids folded to :id, capped), method and status (or outcome when no response was sent).',
    labelNames: ['route', 'method', 'status'] as const,
    registers,
  });
  const outcomes = new Counter({
    name: 'aftershock_outcomes_total',
    help: 'Exchanges that did not end with a complete response, by outcome (reset, closed, client-abort, upstream-error, timeout, bad-request, shutdown).',
    labelNames: ['outcome'] as const,
    registers,
  });
  const injected = new Counter({
    name: 'aftershock_faults_injected_total',
    help: 'Faults injected, by rule and fault type.',
    labelNames: ['rule', 'type'] as const,
    registers,
  });
  const duration = new Histogram({
    name: 'aftershock_request_duration_seconds',
    help: 'HTTP exchange duration as the client saw it, from request start to response end, split by whether a fault was injected.',
    labelNames: ['injected'] as const,
    buckets: HTTP_BUCKETS,
    registers,
  });
  const ttfb = new Histogram({
    name: 'aftershock_response_ttfb_seconds',
    help: 'Time to the first response byte sent to the client.',
    labelNames: ['injected'] as const,
    buckets: HTTP_BUCKETS,
    registers,
  });
  const wsConnections = new Counter({
    name: 'aftershock_websocket_connections_total',
    help: 'WebSocket upgrade requests, by status (101 = opened) or outcome.',
    labelNames: ['status'] as const,
    registers,
  });
  const wsReconnects = new Counter({
    name: 'aftershock_websocket_reconnects_total',
    help: `WebSocket connections opened by a client within ${RECONNECT_WINDOW_MS / 1000}s of a connection to the same route that lasted under ${SHORT_LIVED_MS / 1000}s.`,
    registers,
  });
  const wsDuration = new Histogram({
    name: 'aftershock_websocket_duration_seconds',
    help: 'How long WebSocket connections stayed open.',
    buckets: WS_BUCKETS,
    registers,
  });
  const marks = new Counter({ name: 'aftershock_marks_total', help: 'Markers written into the recording.', registers });

  // client + route -> the last WebSocket connection's end and lifetime, for reconnects.
  const lastWs = new Map<string, { end: number; duration: number }>();

  let closed = false;
  const onRecord = (r: AnyRecord): void => {
    if (closed) return;
    if (r.type === 'http') countHttp(r);
    else if (r.type === 'ws') countWs(r);
    else if (r.type === 'mark') marks.inc();
  };
  const statusLabel = (r: HttpRecord | WsRecord): string => (r.status === null ? (r.outcome ?? 'none') : String(r.status));
  const countFaults = (r: HttpRecord | WsRecord): void => {
    for (const f of r.faults) injected.inc({ rule: ruleLabel(f.rule), type: f.type });
  };
  const countHttp = (r: HttpRecord): void => {
    requests.inc({ route: routes.label(r.path), method: KNOWN_METHODS.has(r.method) ? r.method : 'OTHER', status: statusLabel(r) });
    if (r.outcome !== null) outcomes.inc({ outcome: r.outcome });
    countFaults(r);
    const inj = r.faults.length > 0 ? 'true' : 'false';
    duration.observe({ injected: inj }, r.duration / 1000);
    if (r.ttfb !== null) ttfb.observe({ injected: inj }, r.ttfb / 1000);
  };
  const countWs = (r: WsRecord): void => {
    wsConnections.inc({ status: statusLabel(r) });
    if (r.outcome !== null) outcomes.inc({ outcome: r.outcome });
    countFaults(r);
    if (r.status === 101) wsDuration.observe(r.duration / 1000);
    const key = `${r.client}\n${routes.label(r.path)}`;
    const prev = lastWs.get(key);
    if (prev !== undefined && prev.duration < SHORT_LIVED_MS && r.ts >= prev.end - 1 && r.ts - prev.end <= RECONNECT_WINDOW_MS) wsReconnects.inc();
    if (lastWs.size >= 10_000) lastWs.clear();
    lastWs.set(key, { end: r.end, duration: r.duration });
  };
  proxy.recorder.addListener(onRecord);

  // ---- read at scrape time -------------------------------------------------------------------
  // The live totals, once per scrape and shared by the gauges that read them (render() computes them
  // before collecting; a direct registry.metrics() call computes them per gauge). Not a whole
  // report: that evaluated every client and held the event loop for hundreds of milliseconds per
  // scrape at 100k clients.
  const computeLive = (): LiveTotals | null => (proxy.analyzer === null ? null : proxy.analyzer.liveTotals());
  let scrapeLive: LiveTotals | null | undefined;
  const liveTotals = (): LiveTotals | null => (scrapeLive !== undefined ? scrapeLive : computeLive());

  new Gauge({
    name: 'aftershock_info',
    help: 'Always 1; labels carry the aftershock version and the active profile.',
    labelNames: ['version', 'profile', 'hash'] as const,
    registers,
    collect() {
      this.reset();
      this.set({ version: VERSION, profile: proxy.profile.name, hash: proxy.profile.hash }, 1);
    },
  });
  new Gauge({
    name: 'aftershock_ready',
    help: '1 when the proxy is ready (listening, profile loaded, recording healthy), else 0.',
    registers,
    collect() {
      this.set(proxy.ready ? 1 : 0);
    },
  });
  new Gauge({
    name: 'aftershock_connections',
    help: 'Open client connections.',
    registers,
    collect() {
      this.set(proxy.stats().connections);
    },
  });
  new Gauge({
    name: 'aftershock_in_flight',
    help: 'Exchanges in progress (HTTP requests and open WebSocket connections).',
    registers,
    collect() {
      this.set(proxy.stats().inFlight);
    },
  });
  const ruleGauge = (name: string, help: string, read: (s: ReturnType<ProxyHandle['engine']['stats']>[number]) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['rule', 'type'] as const,
      registers,
      collect() {
        this.reset(); // removed ad-hoc rules and swapped profiles drop their series
        for (const s of proxy.engine.stats()) this.set({ rule: s.name, type: s.type }, read(s));
      },
    });
  };
  ruleGauge('aftershock_rule_matched', 'Requests a rule matched since start or the last reset.', (s) => s.matched);
  ruleGauge('aftershock_rule_injected', 'Faults a rule injected since start or the last reset.', (s) => s.injected);
  ruleGauge('aftershock_rule_enabled', '1 when the rule is enabled.', (s) => (s.enabled ? 1 : 0));
  ruleGauge('aftershock_rule_probability', 'The rule\'s injection probability.', (s) => s.probability);

  new Counter({
    name: 'aftershock_recording_written_total',
    help: 'Records confirmed written to the recording file.',
    registers,
    collect() {
      this.reset();
      this.inc(proxy.recorder.stats.written);
    },
  });
  new Counter({
    name: 'aftershock_recording_failed_total',
    help: 'Records that could not be written (I/O error or a destination that could not keep up).',
    registers,
    collect() {
      this.reset();
      this.inc(proxy.recorder.stats.failed);
    },
  });
  new Gauge({
    name: 'aftershock_recording_pending',
    help: 'Records waiting in memory to be written.',
    registers,
    collect() {
      this.set(proxy.recorder.stats.pending);
    },
  });

  const liveGauge = (name: string, help: string, read: (t: LiveTotals) => number | null): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.reset();
        const t = liveTotals();
        const v = t === null ? null : read(t);
        if (v !== null && Number.isFinite(v)) this.set(v);
      },
    });
  };
  liveGauge('aftershock_attempts', 'Attempts (HTTP requests and WebSocket connections) seen by the live retry analysis since start or the last reset.', (t) => t.attempts);
  liveGauge('aftershock_logical_requests', 'Logical requests (chains of attempts) seen by the live retry analysis.', (t) => t.logicalRequests);
  liveGauge('aftershock_retries', 'Attempts the live retry analysis classified as retries.', (t) => t.retries);
  liveGauge('aftershock_retry_ratio', 'Retries / attempts (compare against a 10-20 % retry budget).', (t) => t.retryRatio);
  liveGauge('aftershock_amplification', 'Live workload amplification: offered load / organic load (attempts per first attempt).', (t) => t.amplification);

  return {
    registry,
    contentType: registry.contentType,
    async render() {
      let own: string;
      scrapeLive = computeLive();
      try {
        own = await registry.metrics();
      } finally {
        scrapeLive = undefined;
      }
      const processText = await sharedProcessRegistry().metrics();
      return own + '\n' + processText;
    },
    close() {
      closed = true;
      lastWs.clear();
    },
  };
}
