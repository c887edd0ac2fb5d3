import type {
  AddonProcessGroup,
  DistributedBackends,
  ProcessGroupInfo,
  ProcessGroupJoinOptions,
} from './addonTypes.js';
import { addon } from './loadAddon.js';

/** Which torch.distributed backends this build of the addon has, and what to install for the rest. */
export function distributedBackends(): DistributedBackends {
  return addon().distributedBackends();
}

/**
 * This process's torch.distributed process group (c10d in libtorch: TCPStore rendezvous, Gloo on
 * the CPU, NCCL on CUDA). Collectives are bounded by the join's timeout; a watchdog names a rank
 * that died, hung or stopped with an error (failure()), and a failed collective rejects with an
 * ERR_NATIVE_DISTRIBUTED error naming it.
 */
export class ProcessGroup {
  private constructor(
    /** The binding object, for the classifier's gradient sync. */
    readonly native: AddonProcessGroup,
    readonly rank: number,
    readonly worldSize: number,
  ) {}

  /** Joins the group: every rank waits for the others, up to the timeout. */
  static async join(options: ProcessGroupJoinOptions): Promise<ProcessGroup> {
    const native = new (addon().NativeProcessGroup)();
    await native.join(options);
    return new ProcessGroup(native, options.rank, options.worldSize);
  }

  info(): ProcessGroupInfo {
    return this.native.info();
  }

  /** The element-wise sum over ranks of a small vector. */
  allReduceSum<T extends Float32Array | Float64Array>(values: T, what: string): Promise<T> {
    return this.native.allReduceSum(values, what);
  }

  /** Every rank's values (the same length on every rank), concatenated in rank order. */
  allGather(values: Float32Array, what: string): Promise<Float32Array> {
    return this.native.allGather(values, what);
  }

  /** `root`'s values on every rank. */
  broadcast<T extends Float32Array | Float64Array>(
    values: T,
    root: number,
    what: string,
  ): Promise<T> {
    return this.native.broadcast(values, root, what);
  }

  barrier(what: string): Promise<void> {
    return this.native.barrier(what);
  }

  /** Puts a value in the rendezvous store (for anyone to await). */
  publish(key: string, value: string): Promise<void> {
    return this.native.publish(key, value);
  }

  /** A value another rank publishes; waits as long as every rank is alive. */
  await(key: string): Promise<string> {
    return this.native.await(key);
  }

  /** Every rank's value for `key`, in rank order; waits as long as every rank is alive. */
  exchange(key: string, value: string): Promise<string[]> {
    return this.native.exchange(key, value);
  }

  /** Adds `delta` to a counter in the store (created at 0); the new value, atomic across ranks. */
  add(key: string, delta: number): Promise<number> {
    return this.native.add(key, delta);
  }

  /** What the watchdog found: a message naming the rank that failed, or null. */
  failure(): string | null {
    return this.native.failure();
  }

  /** Leaves the group; with `error`, the other ranks are told why this one stopped. */
  leave(error?: string): Promise<void> {
    return this.native.leave(error);
  }
}
