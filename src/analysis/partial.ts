/**
 * What an engine has learned, before it becomes a report: the aggregates with the open chains
 * finished virtually, plus the raw facts (fault intervals, headers, marks, events, NAT evidence,
 * data quality). `report()` builds its report from one such partial; a file analysed by several
 * threads (`parallel.ts`) gives one partial per thread, and they merge here.
 *
 * Merging is exact for every count and sum (the partitions hold disjoint clients, so attempts,
 * chains, distinct clients and timeline bins add up; each partition's clock follows the whole
 * recording, see `Analyzer.advanceClock`). Sampled statistics (the per-index gap samples behind
 * medians and jitter) merge their samples, so they are estimates drawn from a different, equally
 * spread sample than one thread would keep. Where the caps bite (clients evicted, threads ended
 * early), each partition evicts by its own share of the cap, so the evicted sets differ.
 */
import type { HeaderRecord } from '../record/schema.js';
import { type Aggregates, combineAggregates, reviveAggregates } from './aggregates.js';
import { buildReport, FAULT_GAP_MS, type FaultInterval } from './report.js';
import type { BadLine, QualityCounters, Report, ResolvedOptions } from './types.js';

export const MAX_BAD_LINES = 100;
export const MAX_MARKS = 1000;
export const MAX_EVENTS = 500;
export const MAX_HEADERS = 64;
export const MAX_INTERVALS_PER_RULE = 10_000;
/** User-Agents (and client keys) kept per IP for NAT detection. */
export const MAX_UAS_PER_IP = 8;

/** Per IP: the User-Agents and client keys seen behind it (a few of each). */
export interface IpSeen {
  uas: string[];
  keys: string[];
}

export interface PartialAnalysis {
  /** Committed aggregates merged with the open chains finished on a copy. */
  agg: Aggregates;
  windowMs: number;
  faultIntervals: Map<string, FaultInterval[]>;
  headers: HeaderRecord[];
  marks: Array<{ t: number; label: string }>;
  events: Array<{ t: number; event: string; detail: Record<string, unknown> }>;
  quality: QualityCounters;
  distinctClients: number;
  ips: Map<string, IpSeen>;
  firstTs: number | null;
  lastEnd: number | null;
  /** Attempts that carried the configured client key header. */
  clientKeyHeaderSeen: number;
}

/** Gives a partial that came from a worker thread (a structured clone) its classes back. */
export function revivePartial(p: PartialAnalysis): PartialAnalysis {
  reviveAggregates(p.agg);
  return p;
}

function minOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

function maxOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}

function addUnique(into: string[], from: readonly string[], cap: number): void {
  for (const x of from) if (into.length < cap && !into.includes(x)) into.push(x);
}

/** Fault intervals of one rule from several partitions: sorted, overlapping ones (2 s gap) joined. */
function joinIntervals(lists: ReadonlyArray<readonly FaultInterval[]>): FaultInterval[] {
  const all = lists.flat().sort((a, b) => a.start - b.start);
  const out: FaultInterval[] = [];
  for (const iv of all) {
    const last = out[out.length - 1];
    if (last !== undefined && iv.start <= last.end + FAULT_GAP_MS) {
      last.end = Math.max(last.end, iv.end);
      last.faults += iv.faults;
    } else if (out.length < MAX_INTERVALS_PER_RULE) out.push({ ...iv });
  }
  return out;
}

/** Counters about the input, all zero. */
export const freshQuality = (): QualityCounters => ({
  records: 0,
  recordsByType: {},
  badLines: 0,
  badLineList: [],
  recordsLost: 0,
  unknownRecords: 0,
  newerSchemaRecords: 0,
  invalidRecords: 0,
  clientKeyFallbacks: 0,
  threadsEvicted: 0,
  injectedFaults: 0,
  injectedFailures: 0,
  duplicateRecords: 0,
});

function mergeQuality(parts: readonly QualityCounters[]): QualityCounters {
  const q = freshQuality();
  const bad: BadLine[] = [];
  for (const p of parts) {
    q.records += p.records;
    for (const [k, n] of Object.entries(p.recordsByType)) q.recordsByType[k] = (q.recordsByType[k] ?? 0) + n;
    q.badLines += p.badLines;
    bad.push(...p.badLineList);
    q.recordsLost += p.recordsLost;
    q.unknownRecords += p.unknownRecords;
    q.newerSchemaRecords += p.newerSchemaRecords;
    q.invalidRecords += p.invalidRecords;
    q.clientKeyFallbacks += p.clientKeyFallbacks;
    q.threadsEvicted += p.threadsEvicted;
    q.injectedFaults += p.injectedFaults;
    q.injectedFailures += p.injectedFailures;
    q.duplicateRecords += p.duplicateRecords;
  }
  // The lines one thread would have listed: the first ones of the file.
  bad.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  q.badLineList = bad.slice(0, MAX_BAD_LINES);
  return q;
}

/**
 * Partials of disjoint sets of clients (partitions of one recording) as one partial. The
 * partitions' order is kept wherever order matters (headers; ties of marks and events).
 */
export function mergePartials(parts: readonly PartialAnalysis[]): PartialAnalysis {
  if (parts.length === 1) return parts[0] as PartialAnalysis;
  const faultIntervals = new Map<string, FaultInterval[]>();
  const byRule = new Map<string, FaultInterval[][]>();
  for (const p of parts) {
    for (const [rule, list] of p.faultIntervals) {
      let lists = byRule.get(rule);
      if (lists === undefined) byRule.set(rule, (lists = []));
      lists.push(list);
    }
  }
  for (const [rule, lists] of byRule) faultIntervals.set(rule, joinIntervals(lists));
  const ips = new Map<string, IpSeen>();
  for (const p of parts) {
    for (const [ip, seen] of p.ips) {
      const mine = ips.get(ip);
      if (mine === undefined) ips.set(ip, { uas: [...seen.uas], keys: [...seen.keys] });
      else {
        addUnique(mine.uas, seen.uas, MAX_UAS_PER_IP);
        addUnique(mine.keys, seen.keys, MAX_UAS_PER_IP + 1);
      }
    }
  }
  // Marks and events carry no client, so one partition holds them all, in file order; only when
  // several hold some (an event naming a client) are they put in time order.
  const byTime = <T extends { t: number }>(lists: ReadonlyArray<readonly T[]>, cap: number): T[] => {
    const some = lists.filter((l) => l.length > 0);
    if (some.length <= 1) return (some[0] ?? []).slice(0, cap);
    return some
      .flat()
      .sort((a, b) => a.t - b.t)
      .slice(0, cap);
  };
  let firstTs: number | null = null;
  let lastEnd: number | null = null;
  for (const p of parts) {
    firstTs = minOf(firstTs, p.firstTs);
    lastEnd = maxOf(lastEnd, p.lastEnd);
  }
  return {
    agg: combineAggregates(parts.map((p) => p.agg)),
    // The window grows with the largest Retry-After seen; the widest partition saw it.
    windowMs: Math.max(...parts.map((p) => p.windowMs)),
    faultIntervals,
    headers: parts.flatMap((p) => p.headers).slice(0, MAX_HEADERS),
    marks: byTime(
      parts.map((p) => p.marks),
      MAX_MARKS,
    ),
    events: byTime(
      parts.map((p) => p.events),
      MAX_EVENTS,
    ),
    quality: mergeQuality(parts.map((p) => p.quality)),
    distinctClients: parts.reduce((n, p) => n + p.distinctClients, 0),
    ips,
    firstTs,
    lastEnd,
    clientKeyHeaderSeen: parts.reduce((n, p) => n + p.clientKeyHeaderSeen, 0),
  };
}

/** The report of a partial (of one engine, or merged from several partitions). */
export function reportOfPartial(p: PartialAnalysis, opts: ResolvedOptions, partitions = 1, workerThreads = 0): Report {
  const nat: Array<{ ip: string; userAgents: number }> = [];
  // Several agents behind one address whose client keys do not tell more clients apart than the
  // agents do (keys are IP or IP + User-Agent): devices with the same agent are merged.
  // (Keys the proxy made from the address, `ip` or `ip agent`, are that too, however many agents
  // there are: past the lists' caps the counts alone cannot tell.)
  // Keys that are the bare address merge every agent behind it: two agents are already two
  // programs under one key. Keys that add the agent tell those apart; there it takes three agents
  // (more than one machine's browser and script) to suggest devices behind one address.
  for (const [ip, seen] of p.ips) {
    if (seen.uas.length < 2) continue;
    const bareAddress = seen.keys.every((k) => k === ip);
    if (seen.uas.length < 3 && !bareAddress) continue;
    const fromAddress = bareAddress || seen.keys.every((k) => k === ip || k.startsWith(`${ip} `));
    if (fromAddress || seen.keys.length <= seen.uas.length) nat.push({ ip, userAgents: seen.uas.length });
  }
  nat.sort((a, b) => b.userAgents - a.userAgents || (a.ip < b.ip ? -1 : 1));
  // A header that was never recorded is no fallback: the proxy keyed clients by it already.
  const quality = p.clientKeyHeaderSeen === 0 ? { ...p.quality, clientKeyFallbacks: 0 } : p.quality;
  return buildReport({
    agg: p.agg,
    opts,
    windowMs: p.windowMs,
    faultIntervals: p.faultIntervals,
    headers: p.headers,
    marks: p.marks,
    events: p.events,
    quality,
    distinctClients: p.distinctClients,
    nat,
    firstTs: p.firstTs,
    lastEnd: p.lastEnd,
    partitions,
    workerThreads,
    clientKeyHeaderUnseen: p.clientKeyHeaderSeen === 0 && p.quality.clientKeyFallbacks > 0,
  });
}
