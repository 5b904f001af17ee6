/**
 * Small helpers of the proxy's act side: Retry-After parsing, client addresses.
 */
import type { Socket } from 'node:net';

/**
 * Retry-After as seconds: delta-seconds as is; an HTTP-date as the wait it asks for from `nowMs`,
 * the moment the answer goes out (what a client that honours it waits), to the millisecond: a
 * whole-second rounding, or a wait counted from the request's start, would make clients that
 * honour it exactly look early. Null if unparsable.
 *
 * @example parseRetryAfter('2', Date.now()) === 2
 */
export function parseRetryAfter(value: string, nowMs: number): number | null {
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, Math.round(t - nowMs)) / 1000;
}

/** The client's address without the IPv4-mapped IPv6 prefix. */
export function remoteIp(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
