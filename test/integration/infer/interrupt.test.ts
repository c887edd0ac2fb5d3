// Batch inference that survives interruption, as a shell user meets it: `mentallam infer` in a
// child process on a real (tiny, random) Llama, stopped at a random point with SIGINT (Ctrl-C)
// and with SIGKILL, then `--resume`d; the finished output must equal an uninterrupted run's byte
// for byte. The point is drawn from MENTALLAM_TEST_SEED when set (printed on failure).
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { loadCriteria, loadTokenizer, trainTinyTokenizer } from '../../../src/data/index.js';
import { collateBatch, packExamples } from '../../../src/engine/examples.js';
import { encodePair } from '../../../src/infer/index.js';
import { createRng } from '../../../src/infra/index.js';
import { Classifier } from '../../../src/native.js';
import { corpus, testConfig } from '../../unit/infer/fixtures.js';
import { runCliProcess, startCli } from '../cliProcess.js';

const lines = 3000;
// One libtorch thread: on a shared machine two threads that spin-wait for each other make a run
// tens of times slower (and the point is interrupting it, not its speed).
const env = { OMP_NUM_THREADS: '1' };
const seed = Number(process.env.MENTALLAM_TEST_SEED ?? Date.now() % 100_000);
let root: string;
let adapter: string;
let reference: Buffer;
let args: (output: string) => string[];

function inputText(): string {
  const random = createRng(5);
  const words = corpus.join(' ').split(' ');
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    const length = 5 + Math.floor(random() * 40);
    const post = Array.from({ length }, () => words[Math.floor(random() * words.length)]).join(' ');
    if (i % 97 === 13) out.push('{"broken json');
    else if (i % 50 === 7) out.push(JSON.stringify({ id: i, post }));
    else out.push(JSON.stringify({ id: i, post, criterion: `A${1 + (i % 9)}` }));
  }
  return `${out.join('\n')}\n`;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'mentallam-infer-interrupt-'));
  const baseDir = join(root, 'base');
  const criteria = loadCriteria('data/dsm5/criteria.json');
  const { vocabSize } = await trainTinyTokenizer({
    corpus: [...corpus, ...corpus, ...criteria.map((c) => c.description)],
    vocabSize: 400,
    outDir: baseDir,
  });
  await Classifier.createRandom(
    {
      vocab_size: vocabSize,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_labels: 1,
    },
    baseDir,
    11,
  );
  // An adapter moved off its identity init by a few steps, so it changes the scores.
  const config = await testConfig([`model.path=${baseDir}`, 'model.num_labels=1']);
  const tokenizer = loadTokenizer(baseDir, { paddingSide: 'right' });
  const sequences = await Promise.all(
    corpus.map((post, i) => encodePair(tokenizer, config.data.prompt, post, criteria[i % 9]!)),
  );
  const clf = await Classifier.load({
    modelDir: baseDir,
    dora: { r: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora: false },
    numLabels: 1,
    seed: 1,
    padTokenId: tokenizer.padTokenId,
  });
  try {
    for (let step = 0; step < 3; step++) {
      const batch = collateBatch(packExamples(sequences), [0, 1, 2, 3, 4, 5], {
        padTokenId: tokenizer.padTokenId,
        paddingSide: 'right',
        labels: [1, 0, 1, 1, 0, 1],
      });
      await clf.trainStep(batch, { lr: 0.05 });
    }
    adapter = join(root, 'adapter');
    await clf.saveAdapter(adapter);
  } finally {
    clf.dispose();
  }
  writeFileSync(join(root, 'in.jsonl'), inputText());
  args = (output) => [
    'infer',
    'logging.mlflow.enabled=false',
    'logging.level=warn',
    'logging.progress.mode=lines',
    `data.criteria_path=${resolve('data/dsm5/criteria.json')}`,
    'model.num_labels=1',
    '--checkpoint',
    adapter,
    '--input',
    'in.jsonl',
    '--output',
    output,
  ];
  const uninterrupted = await runCliProcess(args('reference.jsonl'), { cwd: root, env });
  // Every line but the broken ones scored: exit 1 (some records failed), the output complete.
  expect(uninterrupted.stderr).toMatch(
    /infer: line 3,000 of 3,000 \(100\.0%\), [\d,]+ lines\/s, done/,
  );
  expect(uninterrupted.code).toBe(1);
  reference = readFileSync(join(root, 'reference.jsonl'));
}, 300_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Starts a run and sends `signal` once its part file holds `fraction` of the reference's bytes. */
async function interruptAt(output: string, signal: NodeJS.Signals, fraction: number) {
  const run = startCli(args(output), { cwd: root, env });
  const part = join(root, `${output}.part`);
  const target = Math.floor(fraction * reference.length);
  try {
    for (;;) {
      if (existsSync(part) && statSync(part).size >= target) break;
      if (run.child.exitCode !== null)
        throw new Error(`the run ended before ${fraction}: ${run.stderr()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    run.child.kill(signal);
  }
  const exit = await run.exited;
  return { exit, stderr: run.stderr(), part };
}

describe('mentallam infer interrupted and resumed (tiny model, 3,000 lines)', () => {
  const random = createRng(seed);

  test('SIGINT at a random point: exit 130, whole chunks kept; --resume gives the same bytes', async () => {
    const fraction = 0.1 + 0.6 * random();
    const { exit, stderr, part } = await interruptAt('sigint.jsonl', 'SIGINT', fraction);
    expect({ seed, fraction, code: exit.code }).toEqual({ seed, fraction, code: 130 });
    expect(stderr).toMatch(
      /mentallam infer: interrupted; the output up to input line \d+ is in .*sigint\.jsonl\.part: continue with --resume/,
    );
    const kept = readFileSync(part);
    expect(kept[kept.length - 1]).toBe(0x0a);
    expect(reference.subarray(0, kept.length).equals(kept)).toBe(true);
    expect(existsSync(join(root, 'sigint.jsonl.lock'))).toBe(false);

    const resumed = await runCliProcess([...args('sigint.jsonl'), '--resume'], {
      cwd: root,
      env,
    });
    expect(resumed.stderr).toMatch(/continuing after the \d+ records an interrupted run wrote/);
    expect(resumed.code).toBe(1);
    expect({
      seed,
      fraction,
      same: readFileSync(join(root, 'sigint.jsonl')).equals(reference),
    }).toEqual({
      seed,
      fraction,
      same: true,
    });
    expect(existsSync(part)).toBe(false);
  }, 120_000);

  test('SIGKILL at a random point: --resume drops what was torn and gives the same bytes', async () => {
    const fraction = 0.1 + 0.6 * random();
    const { exit, part } = await interruptAt('sigkill.jsonl', 'SIGKILL', fraction);
    expect(exit.signal).toBe('SIGKILL');
    expect(existsSync(part)).toBe(true);
    // The killed process's lock is stale: the resume takes it over.
    expect(existsSync(join(root, 'sigkill.jsonl.lock'))).toBe(true);
    const resumed = await runCliProcess([...args('sigkill.jsonl'), '--resume'], {
      cwd: root,
      env,
    });
    expect(resumed.code).toBe(1);
    expect({
      seed,
      fraction,
      same: readFileSync(join(root, 'sigkill.jsonl')).equals(reference),
    }).toEqual({
      seed,
      fraction,
      same: true,
    });
    expect(existsSync(part)).toBe(false);
    expect(existsSync(join(root, 'sigkill.jsonl.lock'))).toBe(false);
  }, 120_000);
});
