/**
 * Who this process is in a multi-process run, read from the environment the launchers set:
 * torchrun (and `mentallam-train --nproc`) set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
 * MASTER_PORT; Slurm's srun sets SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID, which are used when
 * the standard variables are absent. One owner for this contract: the launcher writes it with
 * launchVariables().
 */

export interface LaunchEnvironment {
  rank: number;
  worldSize: number;
  /** The rank's index on its node: its GPU is cuda:LOCAL_RANK. */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** torchrun's agent hosts the rendezvous store (TORCHELASTIC_USE_AGENT_STORE=True). */
  agentStore: boolean;
  /** GLOO_SOCKET_IFNAME: the network interface Gloo uses between nodes. */
  glooInterface?: string;
  /** Where the values came from, for messages. */
  source: 'environment' | 'Slurm';
}

export class LaunchEnvironmentError extends Error {}

/** MASTER_PORT under Slurm when unset: derived from the job id, so two jobs on a node differ. */
export function slurmDefaultPort(jobId: number): number {
  return 20000 + (jobId % 20000);
}

function integer(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number {
  const text = env[name]!.trim();
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new LaunchEnvironmentError(
      `${name}=${JSON.stringify(env[name])} is not an integer in [${min}, ${max}]`,
    );
  }
  return value;
}

function has(env: NodeJS.ProcessEnv, name: string): boolean {
  return env[name] !== undefined && env[name]!.trim() !== '';
}

/**
 * The launch environment, or null for a single process (no launcher, or a world of one). Bad or
 * missing values throw a LaunchEnvironmentError naming the variable.
 */
export function readLaunchEnvironment(
  env: NodeJS.ProcessEnv = process.env,
): LaunchEnvironment | null {
  const glooInterface = has(env, 'GLOO_SOCKET_IFNAME') ? env.GLOO_SOCKET_IFNAME! : undefined;
  if (has(env, 'WORLD_SIZE') || has(env, 'RANK')) {
    for (const name of ['RANK', 'WORLD_SIZE']) {
      if (!has(env, name)) {
        throw new LaunchEnvironmentError(
          `${name} is not set but ${name === 'RANK' ? 'WORLD_SIZE' : 'RANK'} is: a launcher sets both (torchrun, or mentallam-train --nproc N)`,
        );
      }
    }
    const worldSize = integer(env, 'WORLD_SIZE', 1, 1 << 20);
    if (worldSize === 1) return null;
    const rank = integer(env, 'RANK', 0, worldSize - 1);
    for (const name of ['MASTER_ADDR', 'MASTER_PORT']) {
      if (!has(env, name)) {
        throw new LaunchEnvironmentError(
          `${name} is not set: WORLD_SIZE=${worldSize} needs the rendezvous address of rank 0 (MASTER_ADDR, MASTER_PORT)`,
        );
      }
    }
    return {
      rank,
      worldSize,
      localRank: has(env, 'LOCAL_RANK') ? integer(env, 'LOCAL_RANK', 0, worldSize - 1) : 0,
      masterAddr: env.MASTER_ADDR!.trim(),
      masterPort: integer(env, 'MASTER_PORT', 1, 65535),
      agentStore: env.TORCHELASTIC_USE_AGENT_STORE === 'True',
      ...(glooInterface ? { glooInterface } : {}),
      source: 'environment',
    };
  }
  if (has(env, 'SLURM_PROCID') && has(env, 'SLURM_NTASKS')) {
    const worldSize = integer(env, 'SLURM_NTASKS', 1, 1 << 20);
    if (worldSize === 1) return null;
    const rank = integer(env, 'SLURM_PROCID', 0, worldSize - 1);
    const nodes = has(env, 'SLURM_NNODES') ? integer(env, 'SLURM_NNODES', 1, 1 << 20) : 1;
    let masterAddr = has(env, 'MASTER_ADDR') ? env.MASTER_ADDR!.trim() : undefined;
    if (masterAddr === undefined) {
      if (nodes > 1) {
        throw new LaunchEnvironmentError(
          `MASTER_ADDR is not set: a Slurm job on ${nodes} nodes needs rank 0's host, e.g. ` +
            'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        );
      }
      masterAddr = '127.0.0.1';
    }
    let masterPort: number;
    if (has(env, 'MASTER_PORT')) masterPort = integer(env, 'MASTER_PORT', 1, 65535);
    else if (has(env, 'SLURM_JOB_ID'))
      masterPort = slurmDefaultPort(integer(env, 'SLURM_JOB_ID', 0, Number.MAX_SAFE_INTEGER));
    else
      throw new LaunchEnvironmentError('MASTER_PORT is not set (nor SLURM_JOB_ID to derive one)');
    return {
      rank,
      worldSize,
      localRank: has(env, 'SLURM_LOCALID') ? integer(env, 'SLURM_LOCALID', 0, worldSize - 1) : 0,
      masterAddr,
      masterPort,
      agentStore: false,
      ...(glooInterface ? { glooInterface } : {}),
      source: 'Slurm',
    };
  }
  return null;
}

/** The variables a local launcher (mentallam-train --nproc) gives rank `rank` of `worldSize`. */
export function launchVariables(
  rank: number,
  worldSize: number,
  masterPort: number,
): Record<string, string> {
  return {
    RANK: String(rank),
    WORLD_SIZE: String(worldSize),
    LOCAL_RANK: String(rank),
    LOCAL_WORLD_SIZE: String(worldSize),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(masterPort),
  };
}
