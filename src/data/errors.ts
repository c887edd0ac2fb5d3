/** One problem found in an input file; `line` is 1-based (0 when the problem is about the whole file). */
export interface DataProblem {
  file: string;
  line: number;
  message: string;
}

/**
 * A data error that carries every problem found (up to a limit), so a user can fix a file in one
 * pass instead of one error per run. Messages never contain post text.
 */
export class DataError extends Error {
  readonly problems: DataProblem[];
  readonly truncated: boolean;

  constructor(summary: string, problems: DataProblem[], truncated = false) {
    const lines = problems.map((p) => `  ${p.file}${p.line > 0 ? `:${p.line}` : ''}: ${p.message}`);
    const more = truncated ? '\n  ... (more problems not shown; limit reached)' : '';
    super(`${summary}\n${lines.join('\n')}${more}`);
    this.name = 'DataError';
    this.problems = problems;
    this.truncated = truncated;
  }
}

/** Collects problems up to `maxErrors`; `full` tells the caller to stop scanning. */
export class ProblemCollector {
  readonly problems: DataProblem[] = [];
  truncated = false;

  constructor(readonly maxErrors: number) {}

  add(file: string, line: number, message: string): void {
    if (this.problems.length >= this.maxErrors) {
      this.truncated = true;
      return;
    }
    this.problems.push({ file, line, message });
  }

  get full(): boolean {
    return this.problems.length >= this.maxErrors;
  }

  throwIfAny(summary: string): void {
    if (this.problems.length > 0) throw new DataError(summary, this.problems, this.truncated);
  }
}
