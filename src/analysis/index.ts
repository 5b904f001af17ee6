export { createAnalyzer, type Analyzer, type AnalyzerStats } from './analyzer.js';
export { analyzeFiles, mergeRecordings, type AnalyzeFilesOptions, type AnalyzeProgress } from './files.js';
export type * from './types.js';
