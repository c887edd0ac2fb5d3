import {
  launchVariables,
  LaunchEnvironmentError,
  readLaunchEnvironment,
} from '../../../src/engine/index.js';
import { slurmDefaultPort } from '../../../src/engine/distributed/index.js';

describe('the launch environment', () => {
  test('no launcher, or a world of one, is a single process', () => {
    expect(readLaunchEnvironment({})).toBeNull();
    expect(readLaunchEnvironment({ RANK: '0', WORLD_SIZE: '1' })).toBeNull();
    expect(readLaunchEnvironment({ SLURM_PROCID: '0', SLURM_NTASKS: '1' })).toBeNull();
  });

  test('torchrun / --nproc variables', () => {
    expect(
      readLaunchEnvironment({
        ...launchVariables(1, 4, 29511),
        TORCHELASTIC_USE_AGENT_STORE: 'True',
        GLOO_SOCKET_IFNAME: 'eth1',
      }),
    ).toEqual({
      rank: 1,
      worldSize: 4,
      localRank: 1,
      masterAddr: '127.0.0.1',
      masterPort: 29511,
      agentStore: true,
      glooInterface: 'eth1',
      source: 'environment',
    });
    const twoNodes = readLaunchEnvironment({
      RANK: '5',
      WORLD_SIZE: '8',
      LOCAL_RANK: '1',
      MASTER_ADDR: 'node01',
      MASTER_PORT: '29500',
    });
    expect(twoNodes).toMatchObject({
      rank: 5,
      localRank: 1,
      masterAddr: 'node01',
      agentStore: false,
    });
  });

  test("Slurm's own variables when the standard ones are absent", () => {
    expect(
      readLaunchEnvironment({
        SLURM_PROCID: '3',
        SLURM_NTASKS: '4',
        SLURM_LOCALID: '3',
        SLURM_NNODES: '1',
        SLURM_JOB_ID: '123456',
      }),
    ).toEqual({
      rank: 3,
      worldSize: 4,
      localRank: 3,
      masterAddr: '127.0.0.1',
      masterPort: slurmDefaultPort(123456),
      agentStore: false,
      source: 'Slurm',
    });
    expect(slurmDefaultPort(123456)).toBe(20000 + (123456 % 20000));
    expect(
      readLaunchEnvironment({
        SLURM_PROCID: '9',
        SLURM_NTASKS: '16',
        SLURM_LOCALID: '1',
        SLURM_NNODES: '2',
        MASTER_ADDR: 'gpu-a01',
        MASTER_PORT: '31000',
      }),
    ).toMatchObject({
      rank: 9,
      worldSize: 16,
      localRank: 1,
      masterAddr: 'gpu-a01',
      masterPort: 31000,
    });
    // RANK and WORLD_SIZE win over Slurm's (torchrun inside an allocation).
    expect(
      readLaunchEnvironment({
        ...launchVariables(0, 2, 29600),
        SLURM_PROCID: '7',
        SLURM_NTASKS: '8',
      }),
    ).toMatchObject({ rank: 0, worldSize: 2, source: 'environment' });
  });

  test('bad or missing values are errors naming the variable', () => {
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [{ WORLD_SIZE: '2' }, /RANK is not set but WORLD_SIZE is/],
      [{ RANK: '0' }, /WORLD_SIZE is not set but RANK is/],
      [
        { RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' },
        /RANK="2" is not an integer in \[0, 1\]/,
      ],
      [{ RANK: 'one', WORLD_SIZE: '2' }, /RANK="one"/],
      [
        { RANK: '0', WORLD_SIZE: '2', MASTER_PORT: '29500' },
        /MASTER_ADDR is not set: WORLD_SIZE=2/,
      ],
      [
        { RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'x', MASTER_PORT: '70000' },
        /MASTER_PORT="70000" is not an integer in \[1, 65535\]/,
      ],
      [
        { SLURM_PROCID: '0', SLURM_NTASKS: '8', SLURM_NNODES: '2', SLURM_JOB_ID: '5' },
        /MASTER_ADDR is not set: a Slurm job on 2 nodes needs rank 0's host, e\.g\. export MASTER_ADDR=\$\(scontrol/,
      ],
      [{ SLURM_PROCID: '0', SLURM_NTASKS: '2' }, /MASTER_PORT is not set \(nor SLURM_JOB_ID/],
    ];
    for (const [env, message] of cases) {
      expect(() => readLaunchEnvironment(env)).toThrow(LaunchEnvironmentError);
      expect(() => readLaunchEnvironment(env)).toThrow(message);
    }
  });
});
