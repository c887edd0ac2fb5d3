// logging.mlflow.local_server.backend_store_uri and artifacts_destination decide where the local
// server keeps runs and artifacts; relative paths are taken from the run's working directory.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/index.js';
import { resolveConfiguredTracking } from '../../../src/engine/setup.js';
import { createLogger } from '../../../src/infra/index.js';
import { serverInfoFileName } from '../../../src/tracking/index.js';
import { serverStartTimeoutMs, tempDir, uniqueName } from './helpers.js';

test(
  'the local server uses the configured store and artifacts folder, relative to cwd',
  async () => {
    const cwd = tempDir('store');
    const { config } = await loadConfig({
      env: {},
      overrides: [
        'logging.mlflow.tracking_uri=',
        'logging.mlflow.local_server.backend_store_uri=sqlite:///tracking/runs.db',
        'logging.mlflow.local_server.artifacts_destination=tracking/files',
      ],
    });
    const tracking = await resolveConfiguredTracking(config, {
      cwd,
      env: {},
      logger: createLogger({ level: 'error' }),
    });
    if (tracking === null) throw new Error('expected tracking');
    try {
      const experiment = await tracking.client.getOrCreateExperiment(uniqueName('store'));
      const run = await tracking.client.createRun({
        experimentId: experiment.experimentId,
        runName: 'r',
      });
      const file = join(cwd, 'note.txt');
      writeFileSync(file, 'hello');
      await tracking.client.uploadArtifact(run.info.runId, file, 'notes');
      expect(existsSync(join(cwd, 'tracking', 'runs.db'))).toBe(true);
      expect(
        readFileSync(
          join(
            cwd,
            'tracking',
            'files',
            experiment.experimentId,
            run.info.runId,
            'artifacts',
            'notes',
            'note.txt',
          ),
          'utf8',
        ),
      ).toBe('hello');
      // The server's lock and reuse files stay under <cwd>/mlruns, naming the configured store.
      const info = JSON.parse(readFileSync(join(cwd, 'mlruns', serverInfoFileName), 'utf8'));
      expect(info).toMatchObject({
        backendStoreUri: `sqlite:///${join(cwd, 'tracking', 'runs.db')}`,
        artifactsDestination: join(cwd, 'tracking', 'files'),
      });
    } finally {
      await tracking.close();
    }
  },
  serverStartTimeoutMs + 60_000,
);
