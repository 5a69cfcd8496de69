import type { LoadOptions } from '../../config/index.js';
import { UsageError } from '../../errors/index.js';
import { startAgent } from './agent.js';
import { loadAgentSettings } from './settings.js';

export interface AgentDaemonOptions extends LoadOptions {
  /** Where each event's line goes (`quarry agent: …` on stdout, in the command). */
  log: (line: string) => void;
  /**
   * Called once the settings are read: resolves with the signal's name when the agent is to
   * stop (SIGTERM, SIGINT).
   */
  stopped: () => Promise<string>;
}

/**
 * `quarry agent --config URL` in the foreground: loads the settings (a ConfigError names the
 * URL and key), runs the agent until `stopped` resolves, then revokes its lease and resolves.
 */
export async function runAgentDaemon(location: string | undefined, options: AgentDaemonOptions): Promise<void> {
  if (location === undefined) {
    throw new UsageError('--config URL is required: the agent must be told its server id ("server") and etcd ("etcd")');
  }
  const { log, stopped, ...load } = options;
  const settings = await loadAgentSettings(location, load);
  const signalled = stopped();
  const agent = startAgent({ settings, log });
  const signal = await signalled;
  log(`${signal}: stopping`);
  await agent.stop();
}
