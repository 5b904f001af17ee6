/**
 * Small helpers of the proxy's act side: Retry-After parsing, client addresses.
 */
import type { Socket } from 'node:net';

/** IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`), asctime (`Sun Nov  6 08:49:37 1994`). */
const HTTP_DATE =
  /^(?:[A-Za-z]{3},\s+\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{2}:\d{2}:\d{2}\s+GMT|[A-Za-z]{6,9},\s+\d{1,2}-[A-Za-z]{3}-\d{2}\s+\d{2}:\d{2}:\d{2}\s+GMT|[A-Za-z]{3}\s+[A-Za-z]{3}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}\s+\d{4})$/;

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
  // Only what is written as an HTTP-date is read as one (RFC 9110 §5.6.7: IMF-fixdate and the two
  // obsolete forms): Date.parse reads "1.5" as a day in 2001 and "-1" as one in 2000, which
  // recorded a Retry-After of 0 and made clients that waited look late.
  if (!HTTP_DATE.test(v)) return null;
  const t = Date.parse(v.endsWith('GMT') ? v : `${v} GMT`); // asctime carries no zone: it is GMT
  if (Number.isNaN(t)) return null;
  return Math.max(0, Math.round(t - nowMs)) / 1000;
}

/** The client's address without the IPv4-mapped IPv6 prefix. */
export function remoteIp(socket: Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
