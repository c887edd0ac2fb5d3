#!/usr/bin/env node
import { runCli } from './program.js';
import { runTraining } from './train.js';

// exitCode instead of process.exit() so buffered stdout (e.g. a piped --cfg) is flushed first.
process.exitCode = await runCli(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr },
  { train: runTraining },
);
