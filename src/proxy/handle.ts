/**
 * The shape of a running proxy and of its options: what the CLI, the control API, the demo and
 * embedding test suites program against, kept apart from the code that starts the proxy.
 */
import type { Logger } from '../log.js';
import type { CompiledProfile, RuleEngine } from '../rules/index.js';
import type { RuleStats } from '../rules/types.js';
import type { RuleInput } from '../rules/schema.js';
import type { Analyzer, Report } from '../analysis/index.js';
import type { Recorder } from '../record/recorder.js';

/** Options of `startProxy` (the CLI's flags map onto these one to one). */
export interface ProxyOptions {
  /** The upstream: `http://host:port` or `https://host/prefix`. */
  target: string;
  /** `host:port` to listen on; default `127.0.0.1:8080`; port 0 picks a free port. */
  listen?: string;
  /**
   * `host:port` of the control API, or false for none; default a free loopback port
   * (`127.0.0.1:0`, see `adminUrl`), so proxies started side by side in tests do not clash; the
   * CLI's default is `127.0.0.1:8081`.
   */
  admin?: string | false;
  /** Bearer token required by the control API (except /healthz, /readyz). */
  adminToken?: string;
  /**
   * More Host names the control API answers to besides loopback and its own address (`name`,
   * `.domain` for it and its subdomains, `*` for any); default: AFTERSHOCK_ADMIN_ALLOW_HOST.
   */
  adminAllowHosts?: readonly string[];
  /** A built-in profile name, a file path, or a compiled profile; default `passthrough`. */
  profile?: string | CompiledProfile;
  /** Watch a file profile and apply valid changes; default true for file profiles. */
  watch?: boolean;
  /** NDJSON recording path, `-` for stdout, or null/undefined for none. */
  record?: string | null;
  /** One record per WebSocket message too. */
  recordMessages?: boolean;
  /** Extra request headers to record (redacted if secret). */
  recordHeaders?: string[];
  /** Extra header names to redact. */
  redact?: string[];
  /** `header:<name>`, `ip`, `ip+ua` or `auto` (default). */
  clientKey?: string;
  /** Seed for every random choice; overrides the profile's. */
  seed?: number;
  /** A name for this session, written into the recording's header. */
  session?: string;
  /** Time to wait for the upstream's response head, from the end of the request body; default 30 s. */
  upstreamTimeout?: number | string;
  /**
   * Longest silence inside a response body the upstream began before the client's response is
   * reset (`outcome: timeout`); default 5 min, as Envoy's stream idle timeout, so server-sent
   * events and long polls with sparse heartbeats are not cut.
   */
  upstreamIdleTimeout?: number | string;
  /** Time in-flight exchanges get to finish at shutdown; default 10 s. */
  drainTimeout?: number | string;
  /** Accept self-signed upstream certificates. */
  insecure?: boolean;
  /** `target` (default): Host is the target's; `preserve`: the client's. */
  hostHeader?: 'target' | 'preserve';
  /** Rewrite redirects that point at the target to the proxy's address. */
  rewriteRedirects?: boolean;
  /** Rewrite Set-Cookie domains to this domain (`''` removes the Domain attribute). */
  cookieDomain?: string;
  /** TLS listener: PEM certificate and key paths. */
  tlsCert?: string;
  tlsKey?: string;
  /** Add `x-aftershock-fault` to injected responses; default true. */
  labelFaults?: boolean;
  /** Analyse retries live (for /report); default true. */
  liveAnalysis?: boolean;
  /** This proxy is one of several worker processes (`run --workers`): its live report says it sees only its share. */
  worker?: { index: number; of: number };
  /** Cap on concurrent client connections; default 10,000. */
  maxConnections?: number;
  /** Time a client gets to send its request headers (slowloris defence); default 20 s. */
  headersTimeout?: number | string;
  /** Cap on sockets to the upstream; default 512. */
  upstreamSockets?: number;
  logger?: Logger;
}

/** A running proxy. */
/** What the profile's file holds now, against the profile in force. */
export interface ProfileFileState {
  path: string;
  /** Hot reload on (else the file is read once). */
  watching: boolean;
  /**
   * in-force: the file holds the running profile. rejected: its last change is invalid (or
   * refused), and the previous profile stays. missing: it was removed; the profile stays.
   * waiting: valid, but a rule takes an ad-hoc fault's name; applied once the name is free.
   */
  status: 'in-force' | 'rejected' | 'missing' | 'waiting';
  /** Since when (epoch ms). */
  since: number;
  /** Why, for every status but in-force. */
  message: string | null;
}

export interface ProxyHandle {
  /** Base URL of the proxy listener, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly address: { host: string; port: number };
  /** Base URL of the control API, or null when disabled. */
  readonly adminUrl: string | null;
  readonly engine: RuleEngine;
  readonly recorder: Recorder;
  readonly analyzer: Analyzer | null;
  readonly profile: CompiledProfile;
  /** The profile's file and whether what it holds now is in force (null: no file, e.g. a built-in). */
  readonly profileFile: ProfileFileState | null;
  readonly startedAt: number;
  readonly ready: boolean;
  /** Replaces the profile atomically (a compiled profile, or YAML/JSON text validated first). */
  setProfile(profile: CompiledProfile | string): CompiledProfile;
  /** Loads a built-in or file profile by name and applies it. */
  selectProfile(nameOrPath: string): Promise<CompiledProfile>;
  /** Adds an ad-hoc rule (same shape as a profile rule), optionally expiring after `ttlMs`. */
  addFault(rule: RuleInput, ttlMs?: number): RuleStats;
  removeFault(name: string): boolean;
  /** Writes a marker into the recording; a label that is empty or over 500 characters throws ERR_BAD_OPTION. */
  mark(label: string): void;
  startScenario(): void;
  stopScenario(): void;
  /** Clears counters and the live analysis. */
  reset(): void;
  /** The live retry-analysis report (same JSON as `aftershock analyze`). */
  report(): Report;
  stats(): ProxyStats;
  /** Stops accepting, drains in-flight exchanges, flushes the recording. */
  close(): Promise<void>;
  /**
   * For a process that must exit at once (a second Ctrl-C): ends every exchange in flight,
   * records each as `shutdown`, and writes the whole recording out synchronously.
   */
  abortNow(): void;
}

export interface ProxyStats {
  /** The running profile (as GET /stats gives it). */
  profile: { name: string; hash: string };
  /** As `ready` and GET /readyz: listening, not draining, the recording healthy. */
  ready: boolean;
  uptimeSeconds: number;
  rules: RuleStats[];
  exchanges: number;
  inFlight: number;
  connections: number;
  /** Connections refused because `maxConnections` was reached. */
  droppedConnections: number;
  byStatus: Record<string, number>;
  byOutcome: Record<string, number>;
  recording: { path: string | null; written: number; failed: number; pending: number; lastError: string | null };
  /** With `run --workers N`: which worker this is; every count here is its connections' only. */
  worker: { index: number; of: number } | null;
}
