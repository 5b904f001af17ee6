/**
 * Secrets never reach a recording: credential-like query parameters by name pattern (not an
 * exact list), `name[]` forms, names from `--redact`, and the userinfo of an absolute-form
 * request target. The rule as a table, its invariants as properties, and the real proxy writing
 * a real recording.
 */
import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileClientKey } from '../../src/proxy/client-key.js';
import { createRedactor, DEFAULT_REDACTED_HEADERS, isSecretHeaderName, isSecretQueryName, REDACTED, redactPath } from '../../src/record/redact.js';
import type { HttpRecord } from '../../src/record/schema.js';
import { rawExchange, readRecords, request, startTestProxy, startUpstream, tempDir } from '../helpers.js';

const SECRET_NAMES = [
  // OAuth / OIDC
  'code', 'client_secret', 'refresh_token', 'id_token', 'access_token', 'code_verifier', 'device_code',
  'client_assertion', 'assertion', 'SAMLResponse', 'ticket',
  // API keys
  'key', 'Key', 'KEY', 'x-api-key', 'X-Api-Key', 'api_key', 'apikey', 'api-key', 'apiKey', 'APIKey',
  'access_key', 'accessKey', 'accesskey', 'secret_key', 'private_key', 'privatekey', 'AWSAccessKeyId',
  // tokens, passwords, sessions
  'token', 'private_token', 'auth_token', 'csrf_token', 'jwt', 'password', 'passwd', 'pwd', 'pass', 'passphrase',
  'passcode', 'otp', 'session', 'session_id', 'sessionid', 'JSESSIONID', 'PHPSESSID',
  // auth, signatures, credentials
  'auth', 'oauth_signature', 'authorization', 'Authorization', 'authcode', 'sig', 'signature', 'X-Amz-Signature',
  'X-Amz-Credential', 'X-Amz-Security-Token', 'x-goog-signature', 'credential', 'credentials',
  // bearer tokens, session ids (Express's connect.sid), MACs
  'bearer', 'Bearer', 'sid', 'SID', 'connect.sid', 'user_sid', 'hmac', 'HMAC', 'hmac_sha256', 'X-Hmac-Signature',
  // array / nested forms, encodings
  'token[]', 'token[0]', 'code[]', 'key[]', 'user[password]', 'creds[api_key]', 'token%5B%5D', 'api%5Fkey', 'client%5fsecret',
];

const NORMAL_NAMES = [
  'page', 'limit', 'id', 'q', 'sort', 'order', 'offset', 'cursor', 'filter', 'fields', 'include', 'lang', 'format',
  'callback', 'redirect_uri', 'state', 'scope', 'client_id', 'grant_type', 'response_type', 'code_challenge_method',
  'author', 'authors', 'author_id', 'authority', 'keyword', 'keywords', 'keys', 'monkey', 'hockey', 'design', 'signal',
  'signup', 'country_code', 'zip_code', 'promo_code', 'passenger', 'bypass', 'compass', 'page[size]', 'filter[status]',
  'user_id', 'v', 'ts', 'utm_source', 'side', 'sidebar', 'inside', 'consider', 'residence',
];

describe('query parameter names', () => {
  it.each(SECRET_NAMES)('%s is a secret', (name) => {
    expect(isSecretQueryName(name)).toBe(true);
  });

  it.each(NORMAL_NAMES)('%s is kept', (name) => {
    expect(isSecretQueryName(name)).toBe(false);
  });
});

describe('createRedactor().query', () => {
  const r = createRedactor();

  it('redacts the probe request of the bug report and keeps ordinary parameters', () => {
    const q = 'code=S1&client_secret=S2&refresh_token=S3&id_token=S4&key=S5&private_token=S6&token[]=S7&token=S8&page=2&limit=5&id=3&q=x&sort=asc';
    expect(r.query(q)).toBe(
      'code=[redacted]&client_secret=[redacted]&refresh_token=[redacted]&id_token=[redacted]&key=[redacted]&private_token=[redacted]' +
        '&token[]=[redacted]&token=[redacted]&page=2&limit=5&id=3&q=x&sort=asc',
    );
  });

  it('keeps names as written, leaves valueless and empty parts alone, and returns the same string when nothing matched', () => {
    expect(r.query('Client_Secret=a&&token&x=1&key=')).toBe('Client_Secret=[redacted]&&token&x=1&key=[redacted]');
    const plain = 'page=1&limit=10';
    expect(r.query(plain)).toBe(plain);
    expect(r.query(null)).toBe(null);
    expect(r.query('')).toBe('');
    expect(r.query('%E0%A4%A=1&token%ZZ=2')).toBe('%E0%A4%A=1&token%ZZ=[redacted]');
  });

  it('decodes the valid escapes of a name that also holds an invalid one, so it cannot hide a secret name', () => {
    // `%74oken%ZZ` is `token%ZZ`: decodeURIComponent refuses the whole name for its `%ZZ`.
    expect(r.query('%74oken%ZZ=S22&page=1')).toBe('%74oken%ZZ=[redacted]&page=1');
    expect(r.query('api%5Fkey%=S1&pass%77ord%E0=S2&%73id%C3%28=S3')).toBe('api%5Fkey%=[redacted]&pass%77ord%E0=[redacted]&%73id%C3%28=[redacted]');
    expect(isSecretQueryName('%63lient%5Fsecret%zz%')).toBe(true);
    // Valid escapes of a multi-byte character next to a broken one are still one character.
    expect(isSecretQueryName('caf%C3%A9%ZZ')).toBe(false);
    expect(r.query('caf%C3%A9%ZZ=1')).toBe('caf%C3%A9%ZZ=1');
  });

  it('treats --redact names (given as header names) as secret query parameters too, with [] forms', () => {
    const extra = createRedactor(['X-Tenant-Pin', 'magic']);
    expect(extra.headers.has('x-tenant-pin')).toBe(true);
    expect(extra.query('x-tenant-pin=1&X-TENANT-PIN[]=2&magic=3&magic[a]=4&page=5')).toBe(
      'x-tenant-pin=[redacted]&X-TENANT-PIN[]=[redacted]&magic=[redacted]&magic[a]=[redacted]&page=5',
    );
    // the default rule still applies
    expect(extra.query('refresh_token=x')).toBe('refresh_token=[redacted]');
  });

  it('reads ; as a separator too, keeping each separator as written', () => {
    expect(r.query('a=1;token=S1')).toBe('a=1;token=[redacted]');
    expect(r.query('a=1&b=2;session=S2&page=3;sig=S3;')).toBe('a=1&b=2;session=[redacted]&page=3;sig=[redacted];');
    expect(r.query(';;a=1')).toBe(';;a=1');
  });

  it('decides the same after many distinct names have cycled through its cache', () => {
    const red = createRedactor();
    for (let i = 0; i < 3000; i++) red.query(`p${i}=1`);
    expect(red.query('p1=1&client_secret=2')).toBe('p1=1&client_secret=[redacted]');
  });

  it('property: only values change, every part keeps its name, and no secret value survives', () => {
    const nameArb = fc.oneof(fc.constantFrom(...SECRET_NAMES, ...NORMAL_NAMES), fc.string({ maxLength: 12 }).map((s) => s.replace(/[&;=]/g, '')));
    const valueArb = fc.string({ maxLength: 12 }).map((s) => s.replace(/[&;]/g, ''));
    fc.assert(
      fc.property(fc.array(fc.tuple(nameArb, valueArb), { minLength: 1, maxLength: 8 }), (pairs) => {
        const sep = pairs.length % 2 === 0 ? '&' : ';';
        const raw = pairs.map(([n, v]) => `${n}=${v}`).join(sep);
        const out = r.query(raw) as string;
        const parts = out.split(sep);
        expect(parts.length).toBe(pairs.length);
        pairs.forEach(([n, v], i) => {
          const part = parts[i] as string;
          expect(part.startsWith(`${n}=`)).toBe(true);
          expect(part.slice(n.length + 1)).toBe(isSecretQueryName(n) ? REDACTED : v);
        });
      }),
    );
  });

  it('property: a secret name stays secret in upper case and with a [] or [x] suffix', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('client_secret', 'refresh_token', 'password', 'x-api-key', 'code', 'signature', 'key', 'session_id'),
        fc.boolean(),
        fc.constantFrom('', '[]', '[0]', '[x]'),
        (name, upper, suffix) => {
          const n = (upper ? name.toUpperCase() : name) + suffix;
          expect(isSecretQueryName(n)).toBe(true);
          expect(isSecretQueryName(encodeURIComponent(n))).toBe(true);
        },
      ),
    );
  });
});

describe('header names', () => {
  it.each(['authorization', 'Cookie', 'x-api-key', 'x-access-token', 'X-Session-Token', 'x-tenant-secret', 'x-csrf-token', 'x-hmac', 'x-bearer', 'x-user-sid'])(
    '%s is a secret',
    (name) => {
      expect(isSecretHeaderName(name)).toBe(true);
      expect(createRedactor().headers.has(name.toLowerCase())).toBe(true);
    },
  );

  it.each(['x-client-id', 'user-agent', 'accept', 'x-request-id', 'traceparent', 'idempotency-key', 'x-envoy-attempt-count'])('%s is kept', (name) => {
    expect(isSecretHeaderName(name)).toBe(false);
    expect(createRedactor().headers.has(name)).toBe(false);
  });

  it('adds the --redact names, and lists only the named ones for the recording header', () => {
    expect(isSecretHeaderName('x-tenant-pin')).toBe(false);
    expect(isSecretHeaderName('X-Tenant-Pin', ['x-tenant-pin'])).toBe(true);
    expect(isSecretHeaderName('idempotency-key', ['Idempotency-Key'])).toBe(true);
    const red = createRedactor(['X-Tenant-Pin']);
    expect(red.headers.has('x-tenant-pin')).toBe(true);
    expect([...red.headers]).toEqual([...DEFAULT_REDACTED_HEADERS, 'x-tenant-pin']);
  });
});

describe('--client-key from a secret header', () => {
  const hashed = /^h:[0-9a-f]{16}$/;

  it.each(['authorization', 'x-session-token', 'x-tenant-secret', 'x-access-token'])('header:%s is a hash, the same for the same value', (name) => {
    const key = compileClientKey(`header:${name}`);
    const k = key({ [name]: 'TOPSECRET123' }, '10.0.0.1');
    expect(k).toMatch(hashed);
    expect(key({ [name]: 'TOPSECRET123' }, '10.0.0.2')).toBe(k);
    expect(key({ [name]: 'OTHER' }, '10.0.0.1')).not.toBe(k);
  });

  it('hashes a header named by --redact, and keeps an ordinary header as it is', () => {
    expect(compileClientKey('header:x-tenant-pin', ['X-Tenant-Pin'])({ 'x-tenant-pin': '4711' }, '10.0.0.1')).toMatch(hashed);
    expect(compileClientKey('header:x-tenant-pin')({ 'x-tenant-pin': '4711' }, '10.0.0.1')).toBe('4711');
    expect(compileClientKey('header:x-client-id')({ 'x-client-id': 'c7' }, '10.0.0.1')).toBe('c7');
  });
});

describe('redactPath', () => {
  it.each([
    ['http://alice:S9@example.com/', 'http://[redacted]@example.com/'],
    ['http://alice:S9@example.com', 'http://[redacted]@example.com'],
    ['https://a:b@c@example.com:8443/x/y', 'https://[redacted]@example.com:8443/x/y'],
    ['http://token@example.com/p@q', 'http://[redacted]@example.com/p@q'],
    ['//alice:pw@example.com/', '//[redacted]@example.com/'],
    ['alice:pw@example.com:443', '[redacted]@example.com:443'],
  ])('%s -> %s', (input, out) => {
    expect(redactPath(input)).toBe(out);
  });

  it.each(['/', '/users/a@b.com', '/x?y=@', 'http://example.com/a@b', '*', 'example.com:443'])('%s is kept', (p) => {
    expect(redactPath(p)).toBe(p);
  });
});

describe('createRedactor().path', () => {
  it('redacts secret path parameters (;jsessionid=) as query parameters, leaves the rest of the path alone', () => {
    const r = createRedactor(['x-tenant-pin']);
    expect(r.path('/cart;jsessionid=S1/items;page=2')).toBe('/cart;jsessionid=[redacted]/items;page=2');
    expect(r.path('/a;x-tenant-pin=7;v=1/b')).toBe('/a;x-tenant-pin=[redacted];v=1/b');
    expect(r.path('/plain/path')).toBe('/plain/path');
    expect(r.path('http://alice:pw@example.com/p;token=T')).toBe('http://[redacted]@example.com/p;token=[redacted]');
  });

  it('hides a JWT carried as a path segment (a reset or magic link) and leaves other segments alone', () => {
    const r = createRedactor();
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl';
    const other = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0NTYifQ.c2lnbmF0dXJl';
    const hidden = r.path(`/reset/${jwt}`);
    expect(hidden).toMatch(/^\/reset\/\[redacted:[0-9a-f]{16}\]$/);
    // The same token, the same record path; another token, another (two links stay two requests).
    expect(r.path(`/reset/${jwt}`)).toBe(hidden);
    expect(r.path(`/reset/${other}`)).not.toBe(hidden);
    expect(r.path(`/a/${jwt}/b/${jwt}`)).toMatch(/^\/a\/\[redacted:[0-9a-f]{16}\]\/b\/\[redacted:[0-9a-f]{16}\]$/);
    expect(r.path('/users/eyJ/x')).toBe('/users/eyJ/x');
    expect(r.path(`/cart;jsessionid=S/${jwt};page=2`)).toMatch(/^\/cart;jsessionid=\[redacted\]\/\[redacted:[0-9a-f]{16}\]$/);
  });
});

describe('a JWT in the path', () => {
  it('is in neither the recording nor /metrics', async () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJQQVRISldUIn0.c2lnbmF0dXJlUEFUSEpXVA';
    const file = path.join(tempDir(), 'jwt.ndjson');
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: file, admin: '127.0.0.1:0' });
    expect((await request(`${proxy.url}/reset/${jwt}`)).status).toBe(200);
    const metrics = await request(`${proxy.adminUrl}/metrics`);
    await proxy.close();
    expect(fs.readFileSync(file, 'utf8')).not.toContain('eyJzdWIi');
    expect(metrics.text).not.toContain('eyJ');
    expect(readRecords(file).find((r): r is HttpRecord => r.type === 'http')?.path).toMatch(/^\/reset\/\[redacted:[0-9a-f]{16}\]$/);
    expect(metrics.text).toContain('route="/reset/:id"');
  });
});

describe('the recording', () => {
  it('holds no session id carried as a path parameter', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'matrix.ndjson');
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: file });
    expect((await request(`${proxy.url}/shop;jsessionid=PATHLEAK/cart?x=1`)).status).toBe(200);
    await proxy.close();
    expect(fs.readFileSync(file, 'utf8')).not.toContain('PATHLEAK');
    const rec = readRecords(file).find((r): r is HttpRecord => r.type === 'http');
    expect(rec?.path).toBe('/shop;jsessionid=[redacted]/cart');
  });

  it('holds no secret query value and no userinfo of a refused absolute-form request', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: file, redact: ['x-tenant-pin'] });

    const q = 'code=LEAK1&client_secret=LEAK2&refresh_token=LEAK3&id_token=LEAK4&key=LEAK5&private_token=LEAK6&token[]=LEAK7&token=LEAK8&x-tenant-pin=LEAK10&page=2&limit=5&id=3&q=x&sort=asc';
    expect((await request(`${proxy.url}/cb?${q}`)).status).toBe(200);
    const port = Number(new URL(proxy.url).port);
    const refused = await rawExchange(port, 'GET http://alice:LEAK9@example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n');
    expect(refused.data).toMatch(/^HTTP\/1\.1 4\d\d/);
    await proxy.close();

    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain('LEAK');
    expect(text).not.toContain('alice');
    const http = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    const cb = http.find((r) => r.path === '/cb');
    expect(cb?.query).toBe(
      'code=[redacted]&client_secret=[redacted]&refresh_token=[redacted]&id_token=[redacted]&key=[redacted]&private_token=[redacted]' +
        '&token[]=[redacted]&token=[redacted]&x-tenant-pin=[redacted]&page=2&limit=5&id=3&q=x&sort=asc',
    );
    const bad = http.find((r) => r.outcome === 'bad-request');
    expect(bad?.path).toBe('http://[redacted]@example.com/');
  });

  it('holds no secret header value: not as a --record-headers value, not as the client key', async () => {
    const dir = tempDir();
    const up = await startUpstream((_req, res) => res.end('ok'));
    const run = async (opts: { redact?: string[]; clientKey?: string; recordHeaders?: string[] }, headers: Record<string, string>, query = ''): Promise<HttpRecord> => {
      const file = path.join(dir, `${Object.keys(headers).join('-')}.ndjson`);
      const proxy = await startTestProxy({ target: up.url, record: file, ...opts });
      expect((await request(`${proxy.url}/a${query}`, { headers })).status).toBe(200);
      await proxy.close();
      expect(fs.readFileSync(file, 'utf8')).not.toContain('LEAK');
      return readRecords(file).find((r): r is HttpRecord => r.type === 'http') as HttpRecord;
    };
    const tenant = await run({ redact: ['x-tenant-secret'], clientKey: 'header:x-tenant-secret' }, { 'x-tenant-secret': 'LEAK1' });
    expect(tenant.client).toMatch(/^h:[0-9a-f]{16}$/);
    expect(tenant.headers).toEqual({ 'x-tenant-secret': REDACTED });
    const session = await run({ clientKey: 'header:x-session-token' }, { 'x-session-token': 'LEAK2' });
    expect(session.client).toMatch(/^h:[0-9a-f]{16}$/);
    expect(session.headers).toEqual({ 'x-session-token': REDACTED });
    const access = await run({ recordHeaders: ['x-access-token', 'x-client-id'] }, { 'x-access-token': 'LEAK3', 'x-client-id': 'c7' }, '?a=1;token=LEAK4;sid=LEAK5');
    expect(access.headers).toEqual({ 'x-access-token': REDACTED, 'x-client-id': 'c7' });
    expect(access.client).toBe('c7');
    expect(access.query).toBe(`a=1;token=${REDACTED};sid=${REDACTED}`);
  });
});
