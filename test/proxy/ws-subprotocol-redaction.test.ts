/**
 * A WebSocket subprotocol can carry a credential: browsers cannot set an Authorization header on
 * a WebSocket, so clients put the token in `Sec-WebSocket-Protocol` (Kubernetes'
 * `base64url.bearer.authorization.k8s.io.<token>`, or a marker entry followed by the token:
 * `access_token, <jwt>`). The record's `protocol` and a recorded `sec-websocket-protocol` header
 * keep the marker and hide the secret; the wire is untouched. Real upstreams and `ws` clients.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { REDACTED, redactSubprotocol, redactSubprotocols } from '../../src/record/redact.js';
import type { WsRecord } from '../../src/record/schema.js';
import { onCleanup, readRecords, startTestProxy, startWsUpstream, tempDir, waitFor } from '../helpers.js';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJXU0pXVDMifQ.c2lnbmF0dXJl';
const K8S = 'base64url.bearer.authorization.k8s.io.';

describe('redactSubprotocols (the rule)', () => {
  it.each([
    ['chat', 'chat'],
    ['chat, superchat', 'chat, superchat'],
    ['graphql-ws, graphql-transport-ws', 'graphql-ws, graphql-transport-ws'],
    ['v10.stomp, v11.stomp', 'v10.stomp, v11.stomp'],
    // Kubernetes: the whole marker is kept.
    [`chat, ${K8S}WSJWT3`, `chat, ${K8S}${REDACTED}`],
    [`base64.channel.k8s.io, ${K8S}abc-def_ghi`, `base64.channel.k8s.io, ${K8S}${REDACTED}`],
    [`${K8S.toUpperCase()}X`, `${K8S.toUpperCase()}${REDACTED}`],
    // A marker inside the entry: what follows the marker words is the secret.
    ['access_token.abc123', `access_token.${REDACTED}`],
    ['x-auth-token.s3cr3t', `x-auth-token.${REDACTED}`],
    [`jwt.${JWT}`, `jwt.${REDACTED}`],
    ['Bearer-xyz', `Bearer-${REDACTED}`],
    ['token.abcTOKENxyz', `token.${REDACTED}`],
    // A bare marker entry: the entry after it is the secret.
    [`access_token, ${JWT}`, `access_token, ${REDACTED}`],
    ['Bearer, opaque123', `Bearer, ${REDACTED}`],
    ['chat, token', 'chat, token'],
    // A JWT on its own.
    [`chat, ${JWT}`, `chat, ${REDACTED}`],
    // Names that only look like markers are kept.
    ['author.v1, monkey', 'author.v1, monkey'],
  ])('%s -> %s', (offered, recorded) => {
    expect(redactSubprotocols(offered)).toBe(recorded);
  });

  it('the chosen protocol is redacted as it is in the offered list', () => {
    expect(redactSubprotocol(`${K8S}WSJWT3`, `chat, ${K8S}WSJWT3`)).toBe(`${K8S}${REDACTED}`);
    expect(redactSubprotocol('access_token', `access_token, ${JWT}`)).toBe('access_token');
    expect(redactSubprotocol('opaque123', 'Bearer, opaque123')).toBe(REDACTED);
    expect(redactSubprotocol('chat', `chat, ${K8S}x`)).toBe('chat');
    expect(redactSubprotocol(`${K8S}x`, undefined)).toBe(`${K8S}${REDACTED}`);
  });
});

describe('the recording', () => {
  it.each([
    ['raw relay', false],
    ['message relay', true],
  ])('%s: a token in the chosen subprotocol and in the recorded header is redacted, the wire keeps it', async (_name, recordMessages) => {
    let upstreamSaw = '';
    const token = `${K8S}WSJWT3`;
    const upstream = await startWsUpstream(
      (ws, req) => {
        upstreamSaw = String(req.headers['sec-websocket-protocol']);
        ws.on('message', (d: Buffer) => ws.send(d.toString()));
      },
      { protocols: [token] },
    );
    const file = path.join(tempDir(), 'wsp.ndjson');
    const proxy = await startTestProxy({ target: upstream, record: file, recordMessages, recordHeaders: ['sec-websocket-protocol'] });
    const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/ws', ['chat', token]);
    onCleanup(() => ws.terminate());
    await new Promise<void>((r, j) => {
      ws.once('open', () => r());
      ws.once('error', j);
    });
    expect(ws.protocol).toBe(token); // the client got the upstream's choice as it was
    expect(upstreamSaw.replace(/\s/g, '')).toBe(`chat,${token}`);
    const echoed = new Promise<void>((r) => ws.once('message', () => r()));
    ws.send('hi');
    await echoed;
    ws.close(1000);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    expect(fs.readFileSync(file, 'utf8')).not.toContain('WSJWT3');
    const rec = readRecords(file).find((r): r is WsRecord => r.type === 'ws') as WsRecord;
    expect(rec.status).toBe(101);
    expect(rec.protocol).toBe(`${K8S}${REDACTED}`);
    expect((rec.headers as Record<string, string>)['sec-websocket-protocol']?.replace(/\s/g, '')).toBe(`chat,${K8S}${REDACTED}`);
  });

  it('a token offered after a bare marker is hidden in the header, and in the protocol when the upstream picks it', async () => {
    const upstream = await startWsUpstream(() => undefined, { protocols: ['opaque-secret-77'] });
    const file = path.join(tempDir(), 'wsp2.ndjson');
    const proxy = await startTestProxy({ target: upstream, record: file, recordHeaders: ['sec-websocket-protocol'] });
    const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/ws', ['bearer', 'opaque-secret-77']);
    onCleanup(() => ws.terminate());
    await new Promise<void>((r) => ws.once('open', () => r()));
    expect(ws.protocol).toBe('opaque-secret-77');
    ws.close(1000);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    expect(fs.readFileSync(file, 'utf8')).not.toContain('opaque-secret-77');
    const rec = readRecords(file).find((r): r is WsRecord => r.type === 'ws') as WsRecord;
    expect(rec.protocol).toBe(REDACTED);
    expect((rec.headers as Record<string, string>)['sec-websocket-protocol']?.replace(/\s/g, '')).toBe(`bearer,${REDACTED}`);
  });
});
