// Public API of the data module: criteria, ReDSM5 loading, synthetic data, splits, prompts and
// tokenization. Everything takes plain option objects so it can be used without a Config.
export { cleanText, codePointLength, compareCodePoints, wordCount } from './clean.js';
export { isSymptom, loadCriteria, SPECIAL_CASE, SYMPTOMS } from './criteria.js';
export type { Criterion, Symptom } from './criteria.js';
export { DataError } from './errors.js';
export type { DataProblem } from './errors.js';
export { DATASET_HASH_FORMAT, datasetHash, sha256Hex } from './hash.js';
export { EXPECTED_COUNTS, loadRedsm5 } from './loader.js';
export type { LoadRedsm5Options } from './loader.js';
export { percentile, summaryStats } from './stats.js';
export type { SummaryStats } from './stats.js';
export type { Dataset, DatasetManifest, Pair, Post } from './types.js';
export { RandomState } from './mt19937.js';
export { numpyPairwiseSum, stratifiedGroupKFold } from './splits.js';
export type { FoldIndices, StratifiedGroupKFoldOptions } from './splits.js';
export { innerSplit, STRATIFICATION, stratificationLabels } from './splits.js';
export type { InnerSplitOptions } from './splits.js';
export {
  buildFolds,
  foldFileContent,
  postListHash,
  readFoldFile,
  writeFoldFiles,
} from './folds.js';
export type { BuildFoldsOptions, Fold, FoldFile, FoldMeta, FoldPart } from './folds.js';
export {
  generateSyntheticDataset,
  keywordBaseline,
  REDSM5_POSITIVE_POSTS,
  synthesizeDataset,
  writeSyntheticDataset,
} from './synthetic.js';
export type {
  BaselineScores,
  GenerateSyntheticOptions,
  SyntheticAnnotation,
  SyntheticDataset,
  SynthesizeReport,
  WriteSyntheticOptions,
} from './synthetic.js';
export { KEYWORDS } from './syntheticTemplates.js';
export {
  cachedTokenRows,
  loadTokenizer,
  openTokenizer,
  padBatch,
  tokenCacheKey,
} from './tokenizer.js';
export type {
  EncodedBatch,
  LoadTokenizerOptions,
  PaddingSide,
  TokenCacheKey,
  Tokenizer,
} from './tokenizer.js';
export { findTokenizerSource, TokenizerError } from './tokenizerSource.js';
export type { TokenizerSource, TokenizerSourceKind } from './tokenizerSource.js';
export {
  GGUF_PRE_TOKENIZERS,
  GGUF_TOKEN_TYPE,
  GGUF_TOKENIZER_MODELS,
  ggufTokenizer,
} from './ggufTokenizer.js';
export type { GgufMetadata } from './ggufTokenizer.js';
export { readSentencePieceModel } from './sentencePieceModel.js';
export type { SentencePieceModel } from './sentencePieceModel.js';
export { sentencePieceTokenizer } from './sentencePieceTokenizer.js';
export { readTokenizerConfig } from './tokenizerConfig.js';
export type { TokenizerConfig } from './tokenizerConfig.js';
export { generateMerges } from './bpeMerges.js';
export type { BuiltTokenizer } from './tokenizerJson.js';
export {
  llamaTokenizerConfig,
  llamaTokenizerJson,
  trainBpe,
  trainTinyTokenizer,
} from './tinyTokenizer.js';
export type { TrainedTokenizer, TrainTinyTokenizerOptions } from './tinyTokenizer.js';
export {
  buildPrompt,
  ELISION,
  fitPost,
  PromptError,
  renderTemplate,
  splitTemplate,
  validateTemplate,
} from './prompt.js';
export type {
  BuildPromptOptions,
  BuiltPrompt,
  FitPostOptions,
  FittedPost,
  TemplateSplit,
  PromptCriterion,
  PromptTokenizer,
  TruncationStrategy,
} from './prompt.js';
