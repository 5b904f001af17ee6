/**
 * What a response fault can know about the body from the head alone: whether there is one and how
 * long the upstream says it is. A fault that would change nothing in this body returns null and
 * the exchange is not labelled (`truncate` past the end, `corrupt` of an empty body).
 */
import type { UpstreamHead } from '../types.js';

/**
 * The body's length as the head tells it: 0 when the response cannot carry one (an answer to HEAD,
 * 1xx, 204, 304 — RFC 9110 §6.4.1), the Content-Length, or null when only the body can tell
 * (chunked, or read until the connection closes).
 *
 * @example bodyLength('GET', { statusCode: 200, headers: { 'content-length': '48' } }) // 48
 */
export function bodyLength(method: string, head: UpstreamHead): number | null {
  const status = head.statusCode;
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) return 0;
  const declared = head.headers['content-length'];
  if (declared === undefined) return null;
  const n = Number(declared);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}
