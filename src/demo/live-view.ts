/**
 * The demo's live terminal view: where the replayed outage is (a progress bar over the profile's
 * phases) and what each fleet is doing to its service right now (organic load, offered load,
 * amplification, goodput, faults injected per second, the service's queue).
 *
 * On a TTY it redraws a small block in place with plain ANSI escapes (cursor up, clear line) a
 * few times a second; anywhere else (CI logs, a pipe, a file) it prints one plain line per fleet
 * every few seconds, so a log stays readable. The rendering functions are pure and exported for
 * tests; only `startLiveView` touches the stream and timers.
 */
import type { Writable } from 'node:stream';
import { colorAllowed } from '../log.js';

/** One phase of the replayed profile, in ms since the scenario started. */
export interface Phase {
  readonly name: string;
  readonly startMs: number;
  readonly endMs: number;
  /** A few words on what happens in it. */
  readonly description?: string;
}

/** One fleet's row: rates per second over the last second or so. */
export interface FleetRow {
  readonly name: string;
  readonly organic: number;
  readonly offered: number;
  readonly goodput: number;
  readonly faults: number;
  /** The upstream service: requests being worked on, and waiting (with its queue limit). */
  readonly busy: number;
  readonly queued: number;
  readonly queueLimit: number;
}

/** What the view shows at one moment. */
export interface ViewState {
  readonly title: string;
  readonly elapsedMs: number;
  readonly totalMs: number;
  readonly phases: readonly Phase[];
  readonly fleets: readonly FleetRow[];
}

const ESC = '\x1b[';
const BOLD = (s: string, color: boolean): string => (color ? `${ESC}1m${s}${ESC}22m` : s);
const DIM = (s: string, color: boolean): string => (color ? `${ESC}2m${s}${ESC}22m` : s);
const RED = (s: string, color: boolean): string => (color ? `${ESC}31m${s}${ESC}39m` : s);
const GREEN = (s: string, color: boolean): string => (color ? `${ESC}32m${s}${ESC}39m` : s);
const YELLOW = (s: string, color: boolean): string => (color ? `${ESC}33m${s}${ESC}39m` : s);

/**
 * `m:ss`
 *
 * @example formatClock(65_400) === '1:05'
 */
export function formatClock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * The phase at `elapsedMs` (the last one once the timeline is over), or null without phases.
 *
 * @example currentPhase([{ name: 'a', startMs: 0, endMs: 10 }], 5)?.name === 'a'
 */
export function currentPhase(phases: readonly Phase[], elapsedMs: number): Phase | null {
  for (const p of phases) if (elapsedMs >= p.startMs && elapsedMs < p.endMs) return p;
  return phases.length === 0 ? null : (phases[phases.length - 1] as Phase);
}

const amplification = (row: FleetRow): number | null => (row.organic > 0 ? row.offered / row.organic : null);

/**
 * The progress bar: one cell per `totalMs / width`, each phase in its own shade, `▶` at now.
 *
 * @example renderBar({ ...state, elapsedMs: 30_000 }, 40, false)
 */
export function renderBar(state: ViewState, width: number, color: boolean): string {
  const now = Math.min(width - 1, Math.floor((state.elapsedMs / state.totalMs) * width));
  // Cells grouped into runs of one style, so a coloured bar costs a few escapes, not one per cell.
  let out = '';
  let run = '';
  let runStyle: 'past' | 'bad-past' | 'future' | 'bad-future' | 'now' | null = null;
  const flush = (): void => {
    if (run === '') return;
    out += runStyle === 'bad-past' || runStyle === 'now' ? RED(run, color) : runStyle === 'bad-future' ? YELLOW(run, color) : runStyle === 'future' ? DIM(run, color) : run;
    run = '';
  };
  for (let i = 0; i < width; i++) {
    const phase = currentPhase(state.phases, ((i + 0.5) / width) * state.totalMs);
    const bad = phase !== null && /outage|degrad|recover|gate/i.test(phase.name);
    const style = i === now ? 'now' : i < now ? (bad ? 'bad-past' : 'past') : bad ? 'bad-future' : 'future';
    // Without colour, faulty phases use other shades so the bar still shows where they are.
    const ch = i === now ? '▶' : i < now ? (bad && !color ? '▓' : '█') : bad && !color ? '▒' : '░';
    if (style !== runStyle) {
      flush();
      runStyle = style;
    }
    run += ch;
  }
  flush();
  return out;
}

const num = (n: number, w: number, digits = 0): string => n.toFixed(digits).padStart(w);

/**
 * The line cut to `max` visible characters, its escape sequences kept (a line wider than the
 * terminal wraps, and the redraw, which moves up one row per line, then overwrites the wrong rows).
 *
 * @example fitLine('\x1b[1mabcdef\x1b[22m', 3) === '\x1b[1mabc\x1b[0m'
 */
export function fitLine(line: string, max: number): string {
  let shown = 0;
  let i = 0;
  while (i < line.length) {
    if (line.startsWith(ESC, i)) {
      const end = line.indexOf('m', i);
      if (end === -1) break;
      i = end + 1;
      continue;
    }
    if (shown === max) return line.slice(0, i) + (line.includes(ESC) ? `${ESC}0m` : '');
    const cp = line.codePointAt(i) as number;
    i += cp > 0xffff ? 2 : 1;
    shown++;
  }
  return line;
}

/**
 * The TTY frame: a title, the phase bar with the current phase, then one row per fleet.
 *
 * @example renderFrame(state, 80, true).split('\n').length === 6 + state.fleets.length
 */
export function renderFrame(state: ViewState, columns: number, color: boolean): string {
  const phase = currentPhase(state.phases, state.elapsedMs);
  const clock = `${formatClock(state.elapsedMs)} / ${formatClock(state.totalMs)}`;
  const width = Math.max(20, Math.min(60, columns - 20));
  const lines: string[] = [];
  lines.push(`${BOLD(state.title, color)}  ${DIM(clock, color)}`);
  // Phase name and description, cut to what is left of the line (cut before colouring).
  const room = Math.max(0, columns - width - 5);
  const name = phase === null ? '' : phase.name.slice(0, room);
  const desc = phase?.description === undefined || name.length + 3 >= room ? '' : ` — ${phase.description}`.slice(0, room - name.length);
  lines.push(`  ${renderBar(state, width, color)}  ${BOLD(name, color)}${desc === '' ? '' : DIM(desc, color)}`);
  // The timeline's phases, cut before colouring (a long timeline is wider than the terminal).
  lines.push(DIM(`  ${state.phases.map((p) => (p === phase ? `[${p.name}]` : p.name)).join(' → ')}`.slice(0, Math.max(1, columns - 1)), color));
  lines.push('');
  // 76 columns at most, so a frame fits an 80-column terminal.
  lines.push(DIM('  fleet     organic/s offered/s  amplif. goodput/s faults/s  busy + queued', color));
  for (const row of state.fleets) {
    const a = amplification(row);
    const amp = a === null ? '-'.padStart(7) : `${num(a, 6, 1)}x`;
    const ampC = a === null ? amp : a >= 2 ? RED(amp, color) : a >= 1.2 ? YELLOW(amp, color) : GREEN(amp, color);
    const full = row.queueLimit > 0 && row.queued >= row.queueLimit;
    const svc = `${num(row.busy, 3)} + ${num(row.queued, 4)}${full ? RED(' full', color) : ''}`;
    lines.push(`  ${row.name.padEnd(9)} ${num(row.organic, 9, 1)} ${num(row.offered, 9, 1)}  ${ampC} ${num(row.goodput, 9, 1)} ${num(row.faults, 8, 1)}  ${svc}`);
  }
  // Narrower still: cut every line rather than let it wrap.
  return lines.map((l) => fitLine(l, Math.max(1, columns - 1))).join('\n');
}

/**
 * The plain (non-TTY) lines: one per fleet.
 *
 * @example renderPlainLines(state)[0].startsWith('[ 0:35 outage')
 */
export function renderPlainLines(state: ViewState): string[] {
  const phase = currentPhase(state.phases, state.elapsedMs);
  const head = `[${formatClock(state.elapsedMs).padStart(5)} ${(phase?.name ?? '').padEnd(15)}]`;
  return state.fleets.map((row) => {
    const a = amplification(row);
    return (
      `${head} ${row.name.padEnd(8)} organic ${num(row.organic, 5)}/s  offered ${num(row.offered, 5)}/s  ` +
      `(${a === null ? '  -' : num(a, 4, 1)}x)  goodput ${num(row.goodput, 5)}/s  faults ${num(row.faults, 5)}/s  ` +
      `service ${row.busy} busy + ${row.queued} queued`
    );
  });
}

/** Options of `startLiveView`. */
export interface LiveViewOptions {
  readonly stream: Writable & { isTTY?: boolean; columns?: number };
  /** Redraw in place (default: the stream is a TTY and TERM is not `dumb`). */
  readonly tty?: boolean;
  /** Colours (default: tty and NO_COLOR unset). */
  readonly color?: boolean;
  /** Redraw period on a TTY; default 250 ms. */
  readonly frameMs?: number;
  /** Line period otherwise; default 5000 ms. */
  readonly lineMs?: number;
  /** The state now (rates are the caller's business). */
  readonly state: () => ViewState;
}

/** A running view. */
export interface LiveView {
  /** Draws the final state once more and releases the terminal. */
  stop(): void;
}

/**
 * Starts redrawing (TTY) or printing periodic lines (otherwise).
 *
 * @example
 * const view = startLiveView({ stream: process.stdout, state: () => snapshot() });
 * // ... later
 * view.stop();
 */
export function startLiveView(options: LiveViewOptions): LiveView {
  const stream = options.stream;
  const tty = options.tty ?? (stream.isTTY === true && process.env.TERM !== 'dumb');
  const color = options.color ?? (tty && colorAllowed());
  let drawnLines = 0;
  let stopped = false;

  const draw = (): void => {
    const frame = renderFrame(options.state(), stream.columns ?? 100, color);
    let out = '';
    if (drawnLines > 0) out += `${ESC}${drawnLines}F`; // back to the frame's first line
    for (const line of frame.split('\n')) out += `${ESC}2K${line}\n`;
    drawnLines = frame.split('\n').length;
    stream.write(out);
  };
  let printedAt = Date.now();
  const print = (): void => {
    printedAt = Date.now();
    stream.write(renderPlainLines(options.state()).join('\n') + '\n');
  };
  let timer: NodeJS.Timeout;
  if (tty) {
    stream.write(`${ESC}?25l`); // hide the cursor while redrawing
    draw();
    timer = setInterval(draw, options.frameMs ?? 250);
  } else {
    timer = setInterval(print, options.lineMs ?? 5000);
  }
  timer.unref();
  const restoreCursor = (): void => {
    stream.write(`${ESC}?25h`);
  };
  if (tty) process.once('exit', restoreCursor);

  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (tty) {
        draw();
        restoreCursor();
        process.off('exit', restoreCursor);
      } else if (Date.now() - printedAt >= 1000) {
        print();
      }
    },
  };
}
