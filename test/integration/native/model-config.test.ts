// config.json parsing in the addon against transformers' LlamaConfig (the .venv oracle): the
// defaults, GQA and head_dim, the RoPE spellings of v4 and v5, labels, and clear errors.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { type LlamaConfig, loadLlamaConfig, writeLlamaConfig } from '../../../src/native/index.js';

const python = resolve('.venv', 'bin', 'python');
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'mentallam-config-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

let counter = 0;
/** A model directory holding config.json with exactly `text`. */
function configDir(text: string | object): string {
  const dir = join(root, `model-${counter++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), typeof text === 'string' ? text : JSON.stringify(text));
  return dir;
}

/** The fields transformers' LlamaConfig ends up with, in our camelCase names. */
const oracleScript = `
import json, sys
from transformers import LlamaConfig
out = []
for d in sys.argv[1:]:
    c = LlamaConfig.from_pretrained(d)
    rp = c.rope_parameters or {}
    eos = c.eos_token_id[0] if isinstance(c.eos_token_id, list) else c.eos_token_id
    out.append({
        "hiddenSize": c.hidden_size, "intermediateSize": c.intermediate_size,
        "numHiddenLayers": c.num_hidden_layers, "numAttentionHeads": c.num_attention_heads,
        "numKeyValueHeads": c.num_key_value_heads, "headDim": c.head_dim,
        "vocabSize": c.vocab_size, "maxPositionEmbeddings": c.max_position_embeddings,
        "rmsNormEps": c.rms_norm_eps, "ropeTheta": rp.get("rope_theta"),
        "ropeType": rp.get("rope_type", "default"), "factor": rp.get("factor"),
        "lowFreqFactor": rp.get("low_freq_factor"), "highFreqFactor": rp.get("high_freq_factor"),
        "originalMaxPositionEmbeddings": rp.get("original_max_position_embeddings"),
        "padTokenId": c.pad_token_id, "bosTokenId": c.bos_token_id, "eosTokenId": eos,
        "numLabels": c.num_labels, "id2label": [c.id2label[i] for i in range(c.num_labels)],
        "attentionBias": c.attention_bias, "mlpBias": c.mlp_bias,
        "tieWordEmbeddings": c.tie_word_embeddings, "architectures": c.architectures,
    })
print(json.dumps(out))
`;

type Oracle = Record<string, unknown>;

function oracle(...dirs: string[]): Oracle[] {
  const result = spawnSync(python, ['-c', oracleScript, ...dirs], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Oracle[];
}

/** Our config in the oracle's shape; factors only where the RoPE type uses them. */
function comparable(c: LlamaConfig): Oracle {
  const rope = c.rope_scaling;
  const labels = Object.keys(c.id2label).length;
  return {
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numHiddenLayers: c.num_hidden_layers,
    numAttentionHeads: c.num_attention_heads,
    numKeyValueHeads: c.num_key_value_heads,
    headDim: c.head_dim,
    vocabSize: c.vocab_size,
    maxPositionEmbeddings: c.max_position_embeddings,
    rmsNormEps: c.rms_norm_eps,
    ropeTheta: c.rope_theta,
    ropeType: rope?.rope_type ?? 'default',
    factor: rope?.factor ?? null,
    lowFreqFactor: rope?.low_freq_factor ?? null,
    highFreqFactor: rope?.high_freq_factor ?? null,
    originalMaxPositionEmbeddings: rope?.original_max_position_embeddings ?? null,
    padTokenId: c.pad_token_id,
    bosTokenId: c.bos_token_id,
    eosTokenId: c.eos_token_id,
    numLabels: labels,
    id2label: Array.from({ length: labels }, (_, i) => c.id2label[String(i)]),
    attentionBias: c.attention_bias,
    mlpBias: c.mlp_bias,
    tieWordEmbeddings: c.tie_word_embeddings,
  };
}

const llama2 = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  hidden_act: 'silu',
  pretraining_tp: 1,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  vocab_size: 32000,
  torch_dtype: 'float16',
};

const cases: [string, object][] = [
  ['Llama-2-7B (no head_dim, no rope_theta)', llama2],
  ['empty config: LlamaConfig defaults', {}],
  [
    'GQA with an explicit head_dim != hidden / heads',
    {
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 32,
      vocab_size: 1000,
      pad_token_id: 0,
    },
  ],
  [
    'GQA without num_key_value_heads -> MHA',
    { hidden_size: 48, num_attention_heads: 6, vocab_size: 500, rms_norm_eps: 1e-6 },
  ],
  [
    'rope_scaling llama3 (v4 spelling)',
    {
      hidden_size: 64,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      max_position_embeddings: 131072,
      rope_theta: 500000.0,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8.0,
        low_freq_factor: 1.0,
        high_freq_factor: 4.0,
        original_max_position_embeddings: 8192,
      },
      eos_token_id: [128001, 128008, 128009],
      bos_token_id: 128000,
    },
  ],
  [
    'rope_scaling linear with the old "type" key',
    { hidden_size: 32, num_attention_heads: 2, rope_scaling: { type: 'linear', factor: 2.0 } },
  ],
  [
    'rope_parameters (v5) holding rope_theta',
    {
      hidden_size: 64,
      num_attention_heads: 4,
      max_position_embeddings: 16384,
      rope_parameters: {
        rope_type: 'llama3',
        rope_theta: 250000.0,
        factor: 4.0,
        low_freq_factor: 2.0,
        high_freq_factor: 8.0,
        original_max_position_embeddings: 4096,
      },
    },
  ],
  [
    'rope_parameters default type',
    {
      hidden_size: 64,
      num_attention_heads: 4,
      rope_parameters: { rope_type: 'default', rope_theta: 1e6 },
    },
  ],
  [
    'rope_parameters beside a top-level rope_theta',
    {
      hidden_size: 64,
      num_attention_heads: 4,
      rope_theta: 10000.0,
      rope_parameters: { rope_type: 'linear', rope_theta: 40000.0, factor: 2.0 },
    },
  ],
  [
    'labels from id2label, biases, tied embeddings',
    {
      hidden_size: 16,
      num_attention_heads: 2,
      id2label: { '0': 'absent', '1': 'caf\u00e9', '2': 'present \ud83d\ude00' },
      label2id: { absent: 0, 'caf\u00e9': 1, 'present \ud83d\ude00': 2 },
      attention_bias: true,
      mlp_bias: true,
      tie_word_embeddings: true,
      pad_token_id: 2,
    },
  ],
  [
    'num_labels only',
    { hidden_size: 16, num_attention_heads: 2, num_labels: 1, pad_token_id: null },
  ],
];

describe('config.json parsing matches transformers LlamaConfig', () => {
  // One Python process for all cases: importing transformers takes seconds.
  let sources: string[];
  let expected: Oracle[];
  beforeAll(() => {
    sources = cases.map(([, json]) => configDir(json));
    expected = oracle(...sources);
  });

  test.each(cases.map(([label], index) => [label, index] as const))('%s', async (_label, index) => {
    const ours = await loadLlamaConfig(sources[index]!);
    const { architectures: _architectures, ...theirs } = expected[index]!;
    expect(comparable(ours)).toEqual(theirs);
  });

  test('a path to the .json file works like its directory, and values pass through', async () => {
    const dir = configDir(llama2);
    const ours = await loadLlamaConfig(join(dir, 'config.json'));
    expect(ours).toEqual(await loadLlamaConfig(dir));
    expect(ours).toMatchObject({
      head_dim: 128,
      num_key_value_heads: 32,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      rope_scaling: null,
      pad_token_id: null,
      id2label: { '0': 'LABEL_0', '1': 'LABEL_1' },
      label2id: { LABEL_0: 0, LABEL_1: 1 },
      torch_dtype: 'float16',
      hidden_act: 'silu',
      initializer_range: 0.02,
    });
    expect(ours).not.toHaveProperty('problem_type');
  });

  test('writeLlamaConfig writes a config transformers loads as a sequence classifier', async () => {
    const targets: string[] = [];
    for (const source of sources) {
      const config = await loadLlamaConfig(source);
      const target = join(root, `written-${counter++}`);
      mkdirSync(target);
      await writeLlamaConfig(join(target, 'config.json'), config);
      expect(await loadLlamaConfig(target)).toEqual(config);
      targets.push(target);
    }
    const after = oracle(...targets);
    for (let i = 0; i < sources.length; i++) {
      const { architectures, ...rest } = after[i]!;
      expect(architectures).toEqual(['LlamaForSequenceClassification']);
      const { architectures: _a, ...before } = expected[i]!;
      expect(rest).toEqual(before);
    }
  });

  test('writeLlamaConfig fills what is derived: head_dim, KV heads, labels', async () => {
    const path = join(root, `partial-${counter++}.json`);
    await writeLlamaConfig(path, { hidden_size: 64, num_attention_heads: 8, num_labels: 3 });
    expect(await loadLlamaConfig(path)).toMatchObject({
      head_dim: 8,
      num_key_value_heads: 8,
      id2label: { '0': 'LABEL_0', '1': 'LABEL_1', '2': 'LABEL_2' },
    });
  });
});

describe('bad config.json files are errors naming the file and the problem', () => {
  const deep = '['.repeat(100000);
  test.each([
    [
      'trailing comma',
      '{"hidden_size": 64,}',
      /invalid JSON at line 1, column 20: syntax error while parsing object key - unexpected '}'; expected string literal/,
    ],
    [
      'an error on a later line',
      '{\n  "hidden_size": 64,\n  "vocab_size": 1e\n}',
      /invalid JSON at line 4, column 0: syntax error while parsing value - invalid number; expected '\+', '-', or digit after exponent/,
    ],
    ['empty file', '', /invalid JSON at line 1, column 1: attempting to parse an empty input/],
    ['not an object', '[1, 2]', /expected a JSON object, got an array/],
    [
      'NaN is not JSON',
      '{"rms_norm_eps": NaN}',
      /invalid JSON at line 1, column 18: .*invalid literal/,
    ],
    [
      'single quotes',
      "{'hidden_size': 64}",
      /invalid JSON at line 1, column 2: .*object key - invalid literal/,
    ],
    ['raw control character', '{"a": "x\ty"}', /control character U\+0009 \(HT\) must be escaped/],
    ['bad escape', '{"a": "\\q"}', /forbidden character after backslash/],
    [
      'lone surrogate',
      '{"a": "\\ud800x"}',
      /surrogate U\+D800\.\.U\+DBFF must be followed by U\+DC00\.\.U\+DFFF/,
    ],
    [
      'leading zero',
      '{"hidden_size": 064}',
      /invalid JSON at line 1, column 19: .*unexpected number literal/,
    ],
    ['deep nesting', deep, /nesting deeper than 512 levels/],
    [
      'string where a number goes',
      '{"hidden_size": "64"}',
      /: hidden_size must be an integer, got "64"$/,
    ],
    [
      'fraction where an integer goes',
      '{"hidden_size": 64.5}',
      /hidden_size must be an integer, got 64.5/,
    ],
    ['zero size', '{"num_hidden_layers": 0}', /num_hidden_layers must be positive, got 0/],
    ['infinite number', '{"rms_norm_eps": 1e400}', /invalid JSON: number overflow parsing '1e400'/],
    ['boolean as string', '{"attention_bias": "true"}', /attention_bias must be true or false/],
    [
      'KV heads not dividing heads',
      '{"num_attention_heads": 4, "num_key_value_heads": 3}',
      /num_key_value_heads \(3\) must divide num_attention_heads \(4\)/,
    ],
    [
      'hidden size not divisible and no head_dim',
      '{"hidden_size": 10, "num_attention_heads": 4}',
      /hidden_size \(10\) is not divisible by num_attention_heads \(4\) and there is no head_dim/,
    ],
    [
      'unsupported rope type',
      '{"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}',
      /rope_scaling\.rope_type 'yarn' is not supported \(supported: default, linear, llama3\)/,
    ],
    [
      'llama3 without its keys',
      '{"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}',
      /rope_scaling\.low_freq_factor is required for rope_type llama3/,
    ],
    [
      'linear without a factor',
      '{"rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0}}',
      /rope_parameters\.factor is required for rope_type linear/,
    ],
    [
      'rope_scaling not an object',
      '{"rope_scaling": "linear"}',
      /rope_scaling must be an object or null/,
    ],
    ['another architecture', '{"model_type": "mistral"}', /model_type 'mistral' is not supported/],
    ['another activation', '{"hidden_act": "gelu"}', /hidden_act 'gelu' is not supported/],
    [
      'id2label with a gap',
      '{"id2label": {"0": "a", "2": "b"}}',
      /id2label must have the keys 0\.\.1/,
    ],
    [
      'id2label with a bad key',
      '{"id2label": {"x": "a"}}',
      /id2label key 'x' is not a label index/,
    ],
    [
      'num_labels disagreeing with id2label',
      '{"num_labels": 3, "id2label": {"0": "a", "1": "b"}}',
      /num_labels \(3\) disagrees with id2label, which has 2 labels/,
    ],
    [
      'negative token id',
      '{"pad_token_id": -1}',
      /pad_token_id must be a non-negative integer or null/,
    ],
  ])('%s', async (_label, text, pattern) => {
    const dir = configDir(text);
    const file = join(dir, 'config.json');
    const message = await loadLlamaConfig(dir).then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    expect(message.startsWith(`${file}: `)).toBe(true);
    expect(message).toMatch(pattern);
    expect(message.split('\n')).toHaveLength(1);
  });

  test('a directory without config.json', async () => {
    const dir = join(root, 'no-config');
    mkdirSync(dir);
    await expect(loadLlamaConfig(dir)).rejects.toThrow(`${join(dir, 'config.json')}: no such file`);
    await expect(loadLlamaConfig(join(root, 'absent'))).rejects.toThrow(
      `${join(root, 'absent')}: no such file`,
    );
  });

  test('invalid UTF-8 in a string is an error, valid escapes decode', async () => {
    const dir = join(root, `utf8-${counter++}`);
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'config.json'),
      Buffer.concat([
        Buffer.from('{"torch_dtype": "fl'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}'),
      ]),
    );
    await expect(loadLlamaConfig(dir)).rejects.toThrow(/ill-formed UTF-8 byte/);
    const ok = configDir(
      '{"torch_dtype": "\\u0066loat\\u0031\\u0036", "id2label": {"0": "\\ud83d\\ude00"}}',
    );
    expect(await loadLlamaConfig(ok)).toMatchObject({
      torch_dtype: 'float16',
      id2label: { '0': '😀' },
    });
  });
});
