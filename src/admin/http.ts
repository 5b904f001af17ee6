/**
 * The control API's HTTP plumbing: capped body reading, JSON parsing, replies, and the one place
 * where errors become HTTP statuses. Every failure a client can cause ends as a JSON error with a
 * stable `error` code, never as a crash or a hung socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAftershockError, ProfileError } from '../errors.js';

/** Largest request body the control API reads (a profile is a few KiB). */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * An error answer of the control API: HTTP status, stable code, a message saying what to do.
 *
 * @example throw new HttpError(404, 'rule-not-found', 'no rule "x"; GET /rules lists them');
 */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

/** What a route handler answers: JSON (the default) or text with its content type. */
export type Reply =
  | { readonly status: number; readonly json: unknown; readonly headers?: Readonly<Record<string, string>> }
  | { readonly status: number; readonly text: string; readonly contentType: string };

/**
 * Reads the whole body, up to `limit` bytes.
 *
 * @example const yamlText = await readBody(req);
 *
 * A body over the limit answers 413, but only after the rest was read and discarded (up to 16
 * times the limit): answering while the client is still sending makes its TCP stack reset the
 * connection and lose the answer.
 */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const tooLarge = (): HttpError => new HttpError(413, 'body-too-large', `the request body is over ${limit} bytes`);
  if (Number.isFinite(declared) && declared > limit * 16) {
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      over = true;
      if (size > limit * 16) break;
      continue;
    }
    chunks.push(chunk);
  }
  if (over) throw tooLarge();
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Reads a JSON object body; 400 when it is not JSON or not an object.
 *
 * @example const { label } = await readJsonObject(req);
 */
export async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  if (text.trim() === '') throw new HttpError(400, 'body-required', 'send a JSON object body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, 'bad-json', `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'bad-json', 'the body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/**
 * Rejects keys a body may not carry (unknown keys are errors, as in profiles).
 *
 * @example rejectUnknownKeys(body, ['enabled', 'probability']);
 */
export function rejectUnknownKeys(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new HttpError(400, 'unknown-field', `unknown field${unknown.length === 1 ? '' : 's'} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; allowed: ${allowed.join(', ')}`);
  }
}

/**
 * Maps any thrown value to the HTTP error it answers as; null for a bug (answer 500, log it).
 *
 * @example toHttpError(new ProfileError(problems, null))?.status === 422
 */
export function toHttpError(err: unknown): HttpError | null {
  if (err instanceof HttpError) return err;
  if (err instanceof ProfileError) {
    return new HttpError(422, 'profile-invalid', err.message.split('\n')[0] ?? 'invalid profile', { problems: err.problems });
  }
  if (isAftershockError(err)) {
    switch (err.code) {
      case 'ERR_PROFILE_INVALID':
        return new HttpError(422, 'profile-invalid', err.message, { problems: [] });
      case 'ERR_PROFILE_NOT_FOUND':
        return new HttpError(404, 'profile-not-found', err.message);
      case 'ERR_RULE_NOT_FOUND':
        return new HttpError(404, 'rule-not-found', err.message);
      case 'ERR_BAD_OPTION':
        return new HttpError(400, 'bad-request', err.message);
      default:
        return new HttpError(409, err.code.toLowerCase().replace(/^err_/, '').replaceAll('_', '-'), err.message);
    }
  }
  return null;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = status === 204 ? '' : JSON.stringify(body, null, 2) + '\n';
  sendText(res, status, 'application/json; charset=utf-8', text, headers);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string, headers: Readonly<Record<string, string>> = {}): void {
  // `x-aftershock-control` tells `ctl` (AdminClient) that the answer is the control API's, not the
  // service's: --admin pointed at the proxy's own listener reaches the upstream, which may answer 2xx.
  res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-aftershock-control': '1' });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: err.code, message: err.message, ...err.extra });
}

export function sendReply(res: ServerResponse, reply: Reply): void {
  if ('json' in reply) sendJson(res, reply.status, reply.json, reply.headers);
  else sendText(res, reply.status, reply.contentType, reply.text);
}
