/**
 * How every entry point (training, inference, the bench) gets its config: already resolved (the
 * CLI resolves it first), or composed from a config folder and overrides.
 */
import { loadConfig, type Config } from '../config/index.js';

export interface ConfigSource {
  /** An already resolved config; `overrides` are then only recorded. */
  config?: Config;
  /** With `config`: its keys made by ${now:...}, as loadConfig reports them (default none). */
  clockKeys?: string[];
  /** Hydra-style overrides, e.g. ['training.lr=3e-5', 'experiment=mentallama-redsm5']. */
  overrides?: string[];
  configDir?: string;
  /**
   * For `${env:NAME}` in the config and, in training, the launch environment (RANK, WORLD_SIZE,
   * ...; docs/distributed.md). Default process.env.
   */
  env?: NodeJS.ProcessEnv;
}

/** The config, the overrides that made it, and its keys made by the clock. */
export async function resolveConfig(
  source: ConfigSource,
): Promise<{ config: Config; overrides: string[]; clockKeys: string[] }> {
  const overrides = source.overrides ?? [];
  if (source.config) return { config: source.config, overrides, clockKeys: source.clockKeys ?? [] };
  const loaded = await loadConfig({
    overrides,
    ...(source.configDir ? { configDir: source.configDir } : {}),
    ...(source.env ? { env: source.env } : {}),
  });
  return { config: loaded.config, overrides: loaded.overrides, clockKeys: loaded.clockKeys };
}
