/** One thing wrong with the configuration: where, what was given, what was expected. */
export interface ConfigProblem {
  /** Dotted key path (`training.lr`), or a file (`configs/config.yaml`) for file-level problems. */
  path: string;
  value: unknown;
  expected: string;
}

export function describeValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

/** Every problem found, not just the first, so one run of the command shows all of them. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    const lines = problems.map(
      (p) => `  - ${p.path}: got ${describeValue(p.value)}, expected ${p.expected}`,
    );
    super(`Invalid configuration (${count}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
