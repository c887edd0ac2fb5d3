import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { registerAggregateCommand } from '../../../src/cli/aggregate.js';
import { registerRegisterCommand } from '../../../src/cli/register.js';
import { tempDir, writeFixtureRun } from './fixtures.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

function program() {
  const stdout = capture();
  const stderr = capture();
  const io = { stdout: stdout.stream, stderr: stderr.stream, env: {} };
  const root = new Command('mentallam').exitOverride();
  registerAggregateCommand(root, io).exitOverride();
  registerRegisterCommand(root, io).exitOverride();
  return { root, stdout, stderr };
}

test('mentallam aggregate --run <dir> --no-mlflow prints the headline and writes the files', async () => {
  const dir = await writeFixtureRun(join(tempDir('aggregate-cli'), 'run'));
  const { root, stdout } = program();
  await root.parseAsync(['aggregate', '--run', dir, '--no-mlflow'], { from: 'user' });
  const out = stdout.text();
  expect(out).toMatch(/pooled F1\s+0\.7143\s+macro-F1 0\.7143/);
  expect(out).toMatch(/fold F1\s+0\.7000 ± 0\.1732/);
  expect(out).toMatch(/best fold\s+0 \(validation f1 0\.9500; picked on validation\)/);
  expect(out).toContain(`written to      ${dir}`);
  expect(out).toContain('MLflow          not logged');
});

test('--run is required by both commands; register defaults name and alias', async () => {
  const { root } = program();
  await expect(root.parseAsync(['aggregate'], { from: 'user' })).rejects.toThrow(/--run/);
  await expect(root.parseAsync(['register'], { from: 'user' })).rejects.toThrow(/--run/);
  const register = root.commands.find((c) => c.name() === 'register')!;
  expect(register.opts()).toMatchObject({ name: 'mentallama-criteria-cls', alias: 'champion' });
});
