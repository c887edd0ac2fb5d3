/**
 * The run's strategy from the launch environment and training.distributed: one process, or this
 * process's rank in a joined process group (Gloo on the CPU, NCCL on CUDA).
 */
import type { Config } from '../../config/index.js';
import type { Logger } from '../../infra/index.js';
import { distributedBackends, ProcessGroup } from '../../native/index.js';
import { DataParallelFolds } from './dataParallelFolds.js';
import { FoldsAcrossRanks } from './foldsAcrossRanks.js';
import { readLaunchEnvironment, type LaunchEnvironment } from './launchEnvironment.js';
import { rankDevice } from './rankedStrategy.js';
import { singleProcess, type DistributedStrategy } from './strategy.js';

export class DistributedSetupError extends Error {}

/** The backend for a device: NCCL for CUDA tensors, Gloo for CPU tensors, unless configured. */
export function backendFor(config: Config, device: string): 'gloo' | 'nccl' {
  const configured = config.training.distributed.backend;
  if (configured !== 'auto') return configured;
  return device.startsWith('cuda') ? 'nccl' : 'gloo';
}

export async function joinRanks(
  config: Config,
  options: { env: NodeJS.ProcessEnv; logger: Logger; device: string },
): Promise<DistributedStrategy> {
  let launch: LaunchEnvironment | null;
  try {
    launch = readLaunchEnvironment(options.env);
  } catch (error) {
    throw new DistributedSetupError(`multi-process launch: ${(error as Error).message}`);
  }
  if (launch === null) return singleProcess;
  const settings = config.training.distributed;
  const device = options.device === 'cuda' ? rankDevice(launch.localRank) : options.device;
  const backend = backendFor(config, device);
  const built = distributedBackends();
  if (!built[backend]) throw new DistributedSetupError(built.missing[backend]!);
  if (backend === 'nccl' && !device.startsWith('cuda'))
    throw new DistributedSetupError(
      `training.distributed.backend is nccl but the model runs on ${device}: NCCL works on CUDA tensors only (use gloo)`,
    );
  const logger = options.logger.child({ rank: launch.rank });
  logger.info('joining the process group', {
    rank: launch.rank,
    worldSize: launch.worldSize,
    localRank: launch.localRank,
    rendezvous: `${launch.masterAddr}:${launch.masterPort}`,
    backend,
    mode: settings.mode,
    from: launch.source,
  });
  const group = await ProcessGroup.join({
    rank: launch.rank,
    worldSize: launch.worldSize,
    masterAddr: launch.masterAddr,
    masterPort: launch.masterPort,
    agentStore: launch.agentStore,
    timeoutMs: Math.round(settings.timeout_s * 1000),
    backend,
    device,
    ...(launch.glooInterface ? { glooInterface: launch.glooInterface } : {}),
  });
  return settings.mode === 'ddp'
    ? new DataParallelFolds(group, launch, logger, settings.bucket_mb * 1024 * 1024)
    : new FoldsAcrossRanks(group, launch, logger);
}
