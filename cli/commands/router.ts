import { loadConfig, parseConfigFlag, stopSignal } from '../../config/index.js';
import { QuarryError } from '../../errors/index.js';
import { routerConfigSchema, runRouterWorker, startRouter, startRouterWorkers, WORKER_ENV } from '../../router/index.js';
import type { Command } from '../command.js';

export const router: Command = {
  summary: 'the HTTP router: web requests by domain to the healthy containers, routes from etcd',
  usage: 'quarry router [--config URL]',
  async run(argv, io) {
    const log = (line: string) => io.stderr.write(`quarry router: ${line}\n`);
    // A worker forked by the supervisor below runs this same command line.
    if (io.env[WORKER_ENV]) {
      const code = await runRouterWorker(log);
      process.disconnect?.();
      return code;
    }
    const { config: location } = parseConfigFlag(argv);
    const config = await loadConfig(routerConfigSchema, location, { cwd: io.cwd });
    const options = {
      port: config.port,
      host: config.host,
      httpsPort: config.httpsPort,
      etcd: config.etcd,
      backendDownMs: config.backendDownMs,
      connectTimeoutMs: config.connectTimeoutMs,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      trustedProxies: config.trustedProxies,
      upgradeTimeoutMs: config.upgradeTimeoutMs,
      maxTunnels: config.maxTunnels,
      accessLog: config.accessLog,
    };
    let running;
    try {
      running = config.workers === 1
        ? await startRouter({
          ...options,
          admin: config.admin,
          // Serve /health at once and keep trying etcd: a router host may boot before etcd.
          waitForRoutes: false,
          log,
        })
        : await startRouterWorkers({ workers: config.workers, router: options, admin: config.admin, log });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
        const { address, port } = err as { address?: string; port?: number };
        throw new QuarryError(`quarry router: cannot listen on ${address ?? config.host}:${port ?? config.port}: ${code}` +
          `${location ? ` (config ${location})` : ''}`, { cause: err });
      }
      throw err;
    }
    const stopped = stopSignal();
    io.stdout.write(`quarry router: listening on http://${config.host}:${running.port}, ` +
      `health and stats on http://${config.admin.host}:${running.adminPort}/health, routes from etcd ${config.etcd.join(',')}` +
      `${config.workers > 1 ? `, ${config.workers} workers` : ''}\n`);
    const serving = running;
    void serving.ready.then(() => log(`routes loaded: ${'domains' in serving ? `${serving.domains().length} domain(s)` : `in all ${config.workers} workers`}`));
    const signal = await stopped;
    log(`${signal}: finishing requests in flight`);
    await running.close();
    return 0;
  },
};
