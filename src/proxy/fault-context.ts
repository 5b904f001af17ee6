/**
 * What every exchange hands to the faults acting on it, HTTP or WebSocket: the rule acting now, the
 * exchange's own seeded random streams, the clock, and waits that end when the client goes away.
 *
 * The streams are the exchange's, seeded by its decision (`Decision.seed`), and started only when a
 * fault first draws: a corrupt deciding its positions when the response comes, or a ws-drop on the
 * 40th message, draws the same numbers whenever that happens and takes none from other exchanges.
 * WebSocket messages draw from one stream per direction, so the messages sent one way do not shift
 * the draws of the other.
 */
import type { MessageDirection } from '../faults/types.js';
import { SeededRandom, STREAM } from '../rules/random.js';
import type { ActiveFault, Decision } from '../rules/types.js';
import type { ProxyCore } from './core.js';

/** The reason every exchange's signal aborts with: one shared object, no DOMException per exchange. */
export const EXCHANGE_OVER = Object.freeze(new Error('the exchange is over (the client went away, or it ended)'));

interface Sleep {
  readonly resolve: (elapsed: boolean) => void;
  timer: NodeJS.Timeout | null;
}

export abstract class FaultContextBase {
  protected readonly core: ProxyCore;
  /** The fault whose hook runs now (its rule labels what the primitives inject). */
  protected current: ActiveFault | null = null;
  /** The engine's decision for this exchange, once made: its faults and its streams' seed. */
  protected decision: Decision | null = null;
  private rng: (() => number) | null = null;
  private rngIn: (() => number) | null = null;
  private rngOut: (() => number) | null = null;

  constructor(core: ProxyCore) {
    this.core = core;
  }

  get rule(): string {
    return this.current?.rule ?? '';
  }

  /** The exchange's own stream (see the header); the same function on every read. */
  get random(): () => number {
    return (this.rng ??= new SeededRandom(this.decision?.seed ?? 0).next);
  }

  /** The exchange's stream for its WebSocket messages in `dir` (see the header). */
  messageRandom(dir: MessageDirection): () => number {
    const seed = this.decision?.seed ?? 0;
    if (dir === 'in') return (this.rngIn ??= new SeededRandom(seed, STREAM.messagesIn).next);
    return (this.rngOut ??= new SeededRandom(seed, STREAM.messagesOut).next);
  }

  get now(): () => number {
    return this.core.now;
  }

  abstract get signal(): AbortSignal;

  /** True once the exchange is over: sleeps end at once with `false`. */
  protected abstract get over(): boolean;

  /** Waits in flight; ended early (false) by `endSleeps` when the exchange is over. */
  private sleeps: Sleep[] | null = null;

  /**
   * A timer, not an AbortSignal listener: a latency fault waits on every request it delays, and
   * signals cost an EventTarget and, when aborted, an exception object each.
   */
  sleep(ms: number): Promise<boolean> {
    if (this.over) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const s: Sleep = { resolve, timer: null };
      if (Number.isFinite(ms)) s.timer = setTimeout(wake, Math.max(0, ms), this, s);
      (this.sleeps ??= []).push(s);
    });
  }

  /** @internal */
  woke(s: Sleep): void {
    const list = this.sleeps;
    if (list !== null) {
      const i = list.indexOf(s);
      if (i !== -1) list.splice(i, 1);
    }
    s.resolve(true);
  }

  /** Ends every wait in flight with `false`; called once when the exchange is over. */
  protected endSleeps(): void {
    const list = this.sleeps;
    if (list === null) return;
    this.sleeps = null;
    for (const s of list) {
      if (s.timer !== null) clearTimeout(s.timer);
      s.resolve(false);
    }
  }
}

function wake(ctx: FaultContextBase, s: Sleep): void {
  ctx.woke(s);
}
