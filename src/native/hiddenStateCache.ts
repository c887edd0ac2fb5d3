import type {
  AddonHiddenStateCache,
  HiddenStateCacheInfo,
  HiddenStateCacheOptions,
} from './addonTypes.js';
import { addon } from './loadAddon.js';

/**
 * The frozen-bottom cache: the hidden states entering one layer for every unit (a post's
 * shared-prefix row, or one sequence), computed once by Classifier.fillHiddenStateCache and then
 * read by batches (Batch.hiddenStates) in place of the embedding and the layers below it. Valid
 * while no layer below `layer` has an adapter (the classifier checks). Storage is memory up to
 * maxMemoryBytes, else a memory-mapped file that is unlinked as soon as it is mapped. Call
 * dispose() to free it.
 */
export class HiddenStateCache {
  /** @internal */
  readonly native: AddonHiddenStateCache;

  constructor(options: HiddenStateCacheOptions) {
    this.native = new (addon().NativeHiddenStateCache)(options);
  }

  info(): HiddenStateCacheInfo {
    return this.native.info();
  }

  /** Frees the storage now, or when a call using it ends; later batches using it are refused. */
  dispose(): void {
    this.native.dispose();
  }
}
