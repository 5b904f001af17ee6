#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled library (dist/cli/main.js).
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { process.stderr.write(`aftershock: ${err?.message ?? err}\n`); process.exitCode = 1; },
);
