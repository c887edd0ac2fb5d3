#!/usr/bin/env node
import { runCli } from './program.js';
import { runTraining } from './train.js';

// `mentallam-train ARGS` is exactly `mentallam train ARGS`.
process.exitCode = await runCli(
  ['train', ...process.argv.slice(2)],
  { stdout: process.stdout, stderr: process.stderr },
  { train: runTraining },
);
