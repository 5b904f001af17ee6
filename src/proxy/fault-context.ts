/**
 * What every exchange hands to the faults acting on it, HTTP or WebSocket: the rule acting now, the
 * seeded random source, the clock, and waits that end when the client goes away.
 */
import type { ActiveFault } from '../rules/types.js';
import type { ProxyCore } from './core.js';
import { cancellableSleep } from './util.js';

export abstract class FaultContextBase {
  protected readonly core: ProxyCore;
  /** The fault whose hook runs now (its rule labels what the primitives inject). */
  protected current: ActiveFault | null = null;

  constructor(core: ProxyCore) {
    this.core = core;
  }

  get rule(): string {
    return this.current?.rule ?? '';
  }

  get random(): () => number {
    return this.core.random;
  }

  get now(): () => number {
    return this.core.now;
  }

  abstract get signal(): AbortSignal;

  sleep(ms: number): Promise<boolean> {
    return cancellableSleep(ms, this.signal);
  }
}
