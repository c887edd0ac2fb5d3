/** Patience-based early stopping on one validation metric. */
import type { EarlyStoppingState } from '../run/index.js';

export interface EarlyStoppingOptions {
  mode: 'max' | 'min';
  patience: number;
  minDelta: number;
}

/** Saved in a fold checkpoint, so its shape is the run store's. */
export type { EarlyStoppingState };

export interface EarlyStoppingDecision {
  improved: boolean;
  shouldStop: boolean;
}

export class EarlyStopping {
  private state: EarlyStoppingState = {
    best: null,
    bestStep: null,
    evaluationsWithoutImprovement: 0,
  };

  constructor(private readonly options: EarlyStoppingOptions) {
    if (options.patience < 1)
      throw new Error(`early_stopping.patience must be >= 1, got ${options.patience}`);
    if (options.minDelta < 0)
      throw new Error(`early_stopping.min_delta must be >= 0, got ${options.minDelta}`);
  }

  /**
   * Records one evaluation. An improvement must beat the best by more than minDelta; a NaN
   * value never improves (a diverged model must not become "best").
   */
  update(value: number, step: number): EarlyStoppingDecision {
    const { best } = this.state;
    const improved =
      !Number.isNaN(value) &&
      (best === null ||
        (this.options.mode === 'max'
          ? value > best + this.options.minDelta
          : value < best - this.options.minDelta));
    if (improved) {
      this.state = { best: value, bestStep: step, evaluationsWithoutImprovement: 0 };
    } else {
      this.state.evaluationsWithoutImprovement += 1;
    }
    return {
      improved,
      shouldStop: this.state.evaluationsWithoutImprovement >= this.options.patience,
    };
  }

  snapshot(): EarlyStoppingState {
    return { ...this.state };
  }

  restore(state: EarlyStoppingState): void {
    this.state = { ...state };
  }
}
