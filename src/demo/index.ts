/**
 * The demo as a library: `runDemo` replays an outage against a built-in message service with a
 * naive and a careful client fleet, and returns both fleets' retry-analysis reports. The
 * `aftershock demo` command is a thin shell over it; tests run it in-process.
 *
 * @example
 * import { runDemo, formatComparison } from './demo/index.js';
 * const result = await runDemo({ durationMs: 10_000, clients: 8, html: null });
 * process.stdout.write(formatComparison(result));
 */
export { runDemo, defaultHtmlPath, type DemoOptions, type DemoResult, type FleetResult, type FleetKind } from './run-demo.js';
export { formatComparison, closingParagraph, renderDemoHtml, demoJson, summarizeFleet, type FleetSummary, type FindingCount, type AfterFaults } from './compare.js';
export { startMessageService, type MessageService, type MessageServiceOptions, type MessageServiceStats } from './message-service.js';
export { startFleet, type Fleet, type FleetOptions, type FleetStats } from './fleet.js';
export { createCarefulPolicy, createNaivePolicy, fullJitterDelay, parseRetryAfter, type RetryPolicy, type Failure } from './retry-policy.js';
export { loadDemoTimeline, scaleProfileText, type DemoTimeline } from './profile-timeline.js';
export { DEMO_SERVICE, DEMO_CLIENTS, DEMO_INTERVAL_MS, DEMO_TIMEOUT_MS, NAIVE_OUTBOX, NAIVE_MAX_RETRIES } from './defaults.js';
