/**
 * Listening addresses: `host:port` parsing and a listen that fails with a clear ERR_LISTEN.
 */
import type http from 'node:http';
import { AftershockError } from '../errors.js';

/** Parses `host:port` (IPv6 in brackets). */
export function parseHostPort(option: string, raw: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port > 65535) {
    throw new AftershockError('ERR_BAD_OPTION', `${option} ${JSON.stringify(raw)}: write it as HOST:PORT, e.g. 127.0.0.1:8080`);
  }
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string)), port };
}

/** Listens or throws ERR_LISTEN with the reason (port in use, permission). */
export function listenOn(server: http.Server, addr: { host: string; port: number }, option: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const why = err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : err.message;
      reject(new AftershockError('ERR_LISTEN', `cannot listen on ${addr.host}:${addr.port} (${option}): ${why}`, { cause: err }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(addr.port, addr.host);
  });
}
