/**
 * The injected answer every rejecting fault sends (http-error, rate-limit, capacity, ws-reject):
 * headers and body computed once when the fault is compiled, never per request.
 */
import type { OutgoingHttpHeaders } from 'node:http';

export interface PreparedAnswer {
  readonly status: number;
  readonly headers: Readonly<OutgoingHttpHeaders>;
  readonly body: Buffer;
}

export interface AnswerSpec {
  status: number;
  rule: string;
  type: string;
  headers?: Readonly<Record<string, string>> | undefined;
  body?: string | Readonly<Record<string, unknown>> | undefined;
  retryAfter?: string | undefined;
  /** Extra fields for the default JSON body. */
  detail?: Readonly<Record<string, unknown>>;
}

/**
 * Prepares an answer. The default body is `{"error":"injected","rule":...,"fault":...}`: a client
 * or a person reading a log can tell it from the service's own errors.
 *
 * @example prepareAnswer({ status: 503, rule: 'reject-sends', type: 'http-error', retryAfter: '2' })
 */
export function prepareAnswer(spec: AnswerSpec): PreparedAnswer {
  const headers: OutgoingHttpHeaders = {};
  let payload: Buffer;
  if (spec.body === undefined) {
    payload = Buffer.from(JSON.stringify({ error: 'injected', rule: spec.rule, fault: spec.type, status: spec.status, ...spec.detail }));
    headers['content-type'] = 'application/json';
  } else if (typeof spec.body === 'string') {
    payload = Buffer.from(spec.body);
    headers['content-type'] = 'text/plain; charset=utf-8';
  } else {
    payload = Buffer.from(JSON.stringify(spec.body));
    headers['content-type'] = 'application/json';
  }
  if (spec.retryAfter !== undefined) headers['retry-after'] = spec.retryAfter;
  if (spec.headers !== undefined) Object.assign(headers, spec.headers);
  // 204 and 304 never carry a body (RFC 9110 §6.4.1).
  if (spec.status === 204 || spec.status === 304) {
    payload = Buffer.alloc(0);
    delete headers['content-type'];
  }
  return Object.freeze({ status: spec.status, headers: Object.freeze(headers), body: payload });
}
