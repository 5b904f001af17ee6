/**
 * aftershock as a library: start a proxy in-process, drive its faults, read its retry report.
 *
 * @example
 * import { startProxy } from 'aftershock';
 * const proxy = await startProxy({ target: 'http://127.0.0.1:3000', listen: '127.0.0.1:0', admin: false, profile: 'flaky' });
 * // ... run the client under test against proxy.url ...
 * const report = proxy.report();
 * await proxy.close();
 */
export { startProxy, type ProxyOptions, type ProxyHandle, type ProxyStats } from './proxy/server.js';
export type { ProfileFileState } from './proxy/handle.js';
export { AftershockError, ProfileError, RuleNameTakenError, isAftershockError, type ErrorCode, type ProfileProblem } from './errors.js';
export type * from './record/schema.js';
export type * from './faults/types.js';
export type { FaultInput } from './faults/index.js';
export type { RuleInput } from './rules/schema.js';
export { FAULT_ACTED } from './faults/types.js';
export type * from './rules/types.js';
export { readRecords, type ReadRecordsOptions, type BadLineInfo } from './record/reader.js';
export type { Recorder, RecordListener } from './record/recorder.js';
export { AdminClient, type AdminClientOptions } from './admin/client.js';
export { loadProfile, parseProfile, listBuiltinProfiles, type CompiledProfile, type RuleEngine, type RulePatch, type PhaseInfo } from './rules/index.js';
export {
  createAnalyzer,
  analyzeFiles,
  mergeRecordings,
  formatReport,
  writeHar,
  parseGate,
  evaluateGates,
  REPORT_FORMATS,
  GATE_METRICS,
  type Analyzer,
  type AnalyzerOptions,
  type AnalyzerStats,
  type AnalyzeFilesOptions,
  type AnalyzeProgress,
  type MergeOptions,
  type LiveTotals,
  type Report,
  type Finding,
  type FindingCode,
  type ReportFormat,
  type FormatOptions,
  type Gate,
  type GateResult,
  type GateJson,
} from './analysis/index.js';
export { runDemo, formatComparison, closingParagraph, type DemoOptions, type DemoResult, type FleetResult, type FleetSummary } from './demo/index.js';
export { VERSION } from './version.js';
