/**
 * Artifact writing: a trained and evaluated fold's files, through the run store: predictions
 * (pair identity and scores, never text), thresholds, metrics, curves, the six plots and
 * result.json.
 */
import type { Dataset, Fold } from '../data/index.js';
import {
  criterionF1Rows,
  plotConfusionMatrix,
  plotF1VsThreshold,
  plotLearningCurves,
  plotPerCriterionF1,
  plotPrCurve,
  plotRocCurve,
  thresholdSweep,
  writePlots,
} from '../metrics/index.js';
import type { FoldResult, FoldStore, PredictionRow } from '../run/index.js';
import type { FoldEvaluation } from './evaluation.js';
import type { FoldTrainingResult } from './foldTrainer.js';

export interface FoldArtifactsInput {
  fold: Fold;
  dataset: Pick<Dataset, 'pairs' | 'hash'>;
  trained: FoldTrainingResult;
  evaluation: FoldEvaluation;
  /** The fold's MLflow child run, recorded in result.json. */
  runId: string | null;
  seconds: number;
  /** training.early_stopping.metric, for the learning curve's axis. */
  selectionMetric: string;
}

/** Writes every file of the fold and returns its result (also written as result.json). */
export async function writeFoldArtifacts(
  files: FoldStore,
  input: FoldArtifactsInput,
): Promise<FoldResult> {
  const { fold, dataset, trained, evaluation } = input;
  const { thresholds, report } = evaluation;
  const rows = (indices: number[], scores: Float32Array): PredictionRow[] =>
    indices.map((pairIndex, row) => {
      const pair = dataset.pairs[pairIndex]!;
      return {
        postId: pair.postId,
        criterionId: pair.criterionId,
        label: pair.label,
        score: scores[row]!,
      };
    });
  await files.predictions.write({
    fold: fold.index,
    test: rows(fold.test, evaluation.testScores),
    validation: rows(fold.validation, evaluation.validationScores),
  });
  await files.thresholds.write({
    global: thresholds.global.threshold,
    perCriterion: thresholds.thresholds,
    fellBack: thresholds.fellBack,
    minPositives: thresholds.minPositives,
    detail: thresholds.perCriterion,
    datasetHash: dataset.hash,
    fold: fold.index,
  });
  await files.metrics.write({
    test: report.flat,
    confusionMatrix: { ...report.tuned.overall.confusion },
    bestStep: trained.bestStep,
    bestValidation: trained.bestValue,
    steps: trained.steps,
    stoppedEarly: trained.stoppedEarly,
    validationHistory: trained.history,
  });
  await files.curves.write(report.curves);
  await writeFoldPlots(files.plotsDir, input);
  const result: FoldResult = {
    fold: fold.index,
    runId: input.runId,
    bestAdapterDir: trained.bestAdapterDir,
    bestStep: trained.bestStep,
    steps: trained.steps,
    stoppedEarly: trained.stoppedEarly,
    thresholds: {
      global: thresholds.global.threshold,
      perCriterion: thresholds.thresholds,
      fellBack: thresholds.fellBack,
    },
    testMetrics: report.flat,
    seconds: input.seconds,
  };
  await files.result.write(result);
  return result;
}

async function writeFoldPlots(dir: string, input: FoldArtifactsInput): Promise<void> {
  const { fold, dataset, trained, evaluation } = input;
  const { report, testScores } = evaluation;
  const overall = report.tuned.overall;
  const title = `Fold ${fold.index} test`;
  await writePlots(dir, {
    pr_curve: plotPrCurve(report.curves.pr, {
      prevalence: overall.prevalence,
      averagePrecision: overall.averagePrecision,
      title: `${title}: precision-recall`,
    }),
    roc_curve: plotRocCurve(report.curves.roc, { rocAuc: overall.rocAuc, title: `${title}: ROC` }),
    f1_vs_threshold: plotF1VsThreshold(
      thresholdSweep(
        fold.test.map((i) => dataset.pairs[i]!.label),
        testScores,
        { grid: 'fixed' },
      ),
      { title: `${title}: F1 against the threshold` },
    ),
    confusion_matrix: plotConfusionMatrix(overall.confusion, {
      title: `Fold ${fold.index} test at the tuned thresholds`,
    }),
    per_criterion_f1: plotPerCriterionF1(criterionF1Rows(report.tuned), {
      macroF1: report.tuned.macroF1,
      title: `${title}: F1 per criterion`,
    }),
    learning_curves: plotLearningCurves(
      trained.history.map((entry) => ({
        step: entry.step,
        ...(entry.trainLoss !== undefined ? { trainLoss: entry.trainLoss } : {}),
        validationLoss: entry.metrics['loss']!,
        validationMetric: entry.value,
      })),
      { metricName: `validation ${input.selectionMetric}`, bestStep: trained.bestStep },
    ),
  });
}
