/**
 * The raw WebSocket relay's helpers: a frame-header reader that counts what passes without
 * touching it, and the few handshake and close-frame bytes the proxy writes itself.
 *
 * A connection whose decision holds no message-level fault (and whose messages are not recorded)
 * needs no parsing and no re-framing: after the handshake the proxy copies bytes between the two
 * sockets and only reads the frame headers — enough for the record's message and byte counts and
 * close code, at a fraction of the cost of decoding and re-encoding every message.
 */
import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The Sec-WebSocket-Accept value for a Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A fresh Sec-WebSocket-Key. */
export function newKey(): string {
  return randomBytes(16).toString('base64');
}

export function validKey(key: string | undefined): key is string {
  return key !== undefined && KEY.test(key);
}

/** The offered subprotocols, or null when the header is not a clean, duplicate-free token list. */
export function parseProtocols(header: string | undefined): string[] | null {
  if (header === undefined) return [];
  const out: string[] = [];
  for (const p of header.split(',')) {
    const t = p.trim();
    if (!TOKEN.test(t) || out.includes(t)) return null;
    out.push(t);
  }
  return out;
}

/**
 * Whether an offered or accepted Sec-WebSocket-Extensions value names permessage-deflate only
 * (RFC 7692; any parameters): the one extension the raw relay can pass through unread, since it
 * only sets RSV1 on a message's first frame and never touches control frames.
 */
export function onlyPermessageDeflate(header: string): boolean {
  for (const offer of header.split(',')) {
    const name = (offer.split(';')[0] as string).trim().toLowerCase();
    if (name !== 'permessage-deflate') return false;
  }
  return true;
}

/**
 * A close frame. `masked` for the client-to-server direction (RFC 6455 5.3: a client masks every
 * frame). Code 1005 (no status) gives an empty payload.
 */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const r = Buffer.from(reason, 'utf8').subarray(0, 123);
  const payload = code === 1005 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([code >> 8, code & 0xff]), r]);
  const head = Buffer.from([0x88, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, payload]);
}

/** The `ws` relay's limit on one message (the servers' and the upstream client's maxPayload). */
export const MAX_PAYLOAD = 100 * 1024 * 1024;

function validCloseCode(c: number): boolean {
  return (c >= 1000 && c <= 1014 && c !== 1004 && c !== 1005 && c !== 1006) || (c >= 3000 && c <= 4999);
}

/**
 * Follows the frames of one direction chunk by chunk: counts complete data messages and their
 * payload bytes, reads the first close frame's code and reason, and checks what `ws` would check
 * on receiving them (RFC 6455 framing, masking by direction, control-frame rules, fragment order,
 * UTF-8 of text messages and close reasons, close codes, the 100 MiB message limit) so that the
 * raw relay hands the other side nothing the message relay would have refused. It never changes
 * the bytes; a header split across chunks is kept (at most 13 bytes) until the rest arrives.
 */
export class FrameCounter {
  messages = 0;
  /**
   * Payload bytes of the complete messages (counted when a message's last frame is accepted, as
   * the message relay counts what `ws` hands it: a refused or unfinished message adds nothing).
   */
  bytes = 0;
  /** The first close frame's code (1005 for none given), once it has arrived whole. */
  closeCode: number | null = null;
  closeReason: string | null = null;
  /** The close code `ws` fails the connection with (1002, 1007, 1009) once a frame broke a rule. */
  error: number | null = null;
  /** Called once, when the first close frame has arrived whole. */
  onClose: (() => void) | null = null;
  /**
   * permessage-deflate was negotiated end to end: RSV1 may mark a message's first frame, and a
   * compressed text message is not UTF-8 checked (its payload is compressed; the receiver checks it).
   */
  deflate = false;
  private readonly fromClient: boolean;
  private left = 0;
  private frameLen = 0;
  private op = 0;
  private fin = false;
  private mask: Buffer | null = null;
  private pending: Buffer | null = null;
  /** Inside a fragmented data message; its opcode (1 text, 2 binary) and size so far. */
  private fragmented = false;
  private msgText = false;
  private msgBytes = 0;
  /** The unmasked payload of the text message (or close frame) being read, when it is one. */
  private parts: Buffer[] | null = null;

  /** `fromClient`: the client-to-upstream direction, whose frames must be masked. */
  constructor(fromClient: boolean) {
    this.fromClient = fromClient;
  }

  /** Between two frames: a frame of the proxy's own can be written here without cutting one. */
  get atBoundary(): boolean {
    return this.left === 0 && this.pending === null;
  }

  /**
   * Reads the next chunk. Returns -1 when every frame in it is acceptable, else the offset in
   * `chunk` where the first unacceptable frame starts (0 when it started in an earlier chunk):
   * the bytes before it may be passed on, the rest must not. After that, `error` is set and
   * nothing more is read.
   */
  push(chunk: Buffer): number {
    if (this.error !== null) return 0;
    let buf = chunk;
    let shift = 0;
    if (this.pending !== null) {
      shift = this.pending.length;
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    const n = buf.length;
    let i = 0;
    // Where the frame being read began in `buf` (-1: in an earlier chunk).
    let frameAt = -1;
    while (i < n) {
      if (this.left > 0) {
        const take = Math.min(this.left, n - i);
        if (this.parts !== null) this.collect(buf, i, take);
        i += take;
        this.left -= take;
        if (this.left === 0 && !this.endFrame()) return this.fail(frameAt, shift);
        continue;
      }
      frameAt = i;
      if (n - i < 2) {
        this.pending = Buffer.from(buf.subarray(i));
        return -1;
      }
      const b0 = buf[i] as number;
      const b1 = buf[i + 1] as number;
      let len = b1 & 0x7f;
      const masked = (b1 & 0x80) !== 0;
      const h = (len === 126 ? 4 : len === 127 ? 10 : 2) + (masked ? 4 : 0);
      if (n - i < h) {
        this.pending = Buffer.from(buf.subarray(i));
        return -1;
      }
      if (len === 126) len = buf.readUInt16BE(i + 2);
      else if (len === 127) len = buf.readUInt32BE(i + 2) * 0x1_0000_0000 + buf.readUInt32BE(i + 6);
      const op = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      // Every RSV bit must be clear (RFC 6455 5.2), except RSV1 on the first frame of a message
      // when permessage-deflate was negotiated (RFC 7692 6).
      const rsv = b0 & 0x70;
      if (rsv !== 0 && (!this.deflate || rsv !== 0x40 || op === 0 || op >= 8)) {
        this.broke(1002);
        return this.fail(frameAt, shift);
      }
      if (!this.header(op, fin, masked, len, rsv !== 0)) return this.fail(frameAt, shift);
      this.op = op;
      this.fin = fin;
      this.frameLen = len;
      this.mask = masked ? Buffer.from(buf.subarray(i + h - 4, i + h)) : null;
      i += h;
      this.left = len;
      if (len === 0 && !this.endFrame()) return this.fail(frameAt, shift);
    }
    return -1;
  }

  /** The header rules; false (and `error` set) when one is broken. */
  private header(op: number, fin: boolean, masked: boolean, len: number, compressed: boolean): boolean {
    if (masked !== this.fromClient) return this.broke(1002);
    if (op >= 8) {
      if (op > 10 || !fin || len > 125) return this.broke(1002);
      if (op === 8) {
        if (len === 1) return this.broke(1002);
        this.parts = this.closeCode === null ? [] : null;
      } else this.parts = null;
      return true;
    }
    if (op === 0) {
      if (!this.fragmented) return this.broke(1002);
    } else if (op <= 2) {
      if (this.fragmented) return this.broke(1002);
      this.msgText = op === 1 && !compressed;
      this.msgBytes = 0;
      this.textParts = this.msgText ? [] : null;
    } else return this.broke(1002);
    this.msgBytes += len;
    if (this.msgBytes > MAX_PAYLOAD) return this.broke(1009);
    this.fragmented = !fin;
    this.parts = this.textParts;
    return true;
  }

  /** The text message's parts, kept between its fragments (control frames may come in between). */
  private textParts: Buffer[] | null = null;

  private collect(buf: Buffer, i: number, take: number): void {
    const parts = this.parts as Buffer[];
    const m = this.mask;
    if (m === null) {
      parts.push(buf.subarray(i, i + take));
      return;
    }
    const out = Buffer.allocUnsafe(take);
    let k = this.frameLen - this.left;
    for (let j = 0; j < take; j++, k++) out[j] = buf[i + j]! ^ m[k & 3]!;
    parts.push(out);
  }

  /** A frame ended: count it, check a finished text message or close frame. */
  private endFrame(): boolean {
    const op = this.op;
    if (op < 8) {
      if (!this.fin) return true;
      if (this.msgText) {
        const parts = this.textParts as Buffer[];
        this.textParts = null;
        this.parts = null;
        if (!isUtf8(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts))) return this.broke(1007);
      }
      this.messages++;
      this.bytes += this.msgBytes;
      return true;
    }
    const parts = this.parts;
    this.parts = this.fragmented ? this.textParts : null;
    if (op !== 8 || parts === null) return true;
    const c = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    if (c.length === 0) this.closeCode = 1005;
    else {
      const code = c.readUInt16BE(0);
      if (!validCloseCode(code)) return this.broke(1002);
      const reason = c.subarray(2);
      if (!isUtf8(reason)) return this.broke(1007);
      this.closeCode = code;
      this.closeReason = reason.length > 0 ? reason.toString('utf8') : null;
    }
    this.onClose?.();
    return true;
  }

  private broke(code: number): false {
    this.error = code;
    this.parts = null;
    this.textParts = null;
    return false;
  }

  private fail(frameAt: number, shift: number): number {
    return Math.max(0, frameAt - shift);
  }
}
