#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled library (dist/cli/main.js).
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  // Not a usage mistake (those are AftershockErrors, status 2): a bug. Status 3, so a CI gate
  // (status 1: a condition held) never mistakes a crash for a verdict.
  (err) => {
    process.stderr.write(`aftershock: internal error: ${err?.stack ?? err?.message ?? err}\n(please report this with the command that caused it)\n`);
    process.exitCode = 3;
  },
);
