// Offline analysis speed and peak memory: `analyzeFiles([file])` over a generated recording, in
// its own process so its peak RSS (VmHWM) is its own.
//
//   node bench/offline-analysis.js <file.ndjson> [threads]   (default: analyzeFiles' own choice)
import fs from 'node:fs';
import { distModule, processFacts, serveParent } from './lib.js';

const file = process.argv[2];
const threads = process.argv[3] === undefined ? undefined : Number(process.argv[3]);

async function run() {
  const { analyzeFiles } = await import(distModule('analysis/index.js'));
  // Count lines cheaply first? No: the generator's count is passed by the parent; here we time
  // only the analysis.
  const size = fs.statSync(file).size;
  const before = processFacts();
  const t0 = performance.now();
  const report = await analyzeFiles([file], threads === undefined ? {} : { threads });
  const seconds = (performance.now() - t0) / 1000;
  const after = processFacts();
  const records = report?.totals?.records ?? report?.dataQuality?.records ?? null;
  return {
    seconds,
    fileBytes: size,
    recordsReported: records,
    recordsPerSecond: null,
    peakRss: after.peakRss,
    partitions: report?.dataQuality?.partitions ?? 1,
    rssBefore: before.rss,
    heapUsedEnd: after.heapUsed,
    reportKeys: report && typeof report === 'object' ? Object.keys(report) : null,
  };
}

serveParent({ run });
process.send({ type: 'ready' });
