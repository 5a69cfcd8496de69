import { loadConfig, parseConfigFlag, stopSignal } from '../../config/index.js';
import { QuarryError } from '../../errors/index.js';
import { routerConfigSchema, startRouter } from '../../router/index.js';
import type { Command } from '../command.js';

export const router: Command = {
  summary: 'the HTTP router: web requests by domain to the healthy containers, routes from etcd',
  usage: 'quarry router [--config URL]',
  async run(argv, io) {
    const { config: location } = parseConfigFlag(argv);
    const config = await loadConfig(routerConfigSchema, location, { cwd: io.cwd });
    const log = (line: string) => io.stderr.write(`quarry router: ${line}\n`);
    let running;
    try {
      running = await startRouter({
        port: config.port,
        host: config.host,
        etcd: config.etcd,
        admin: config.admin,
        backendDownMs: config.backendDownMs,
        connectTimeoutMs: config.connectTimeoutMs,
        upstreamTimeoutMs: config.upstreamTimeoutMs,
        keepAliveTimeoutMs: config.keepAliveTimeoutMs,
        trustedProxies: config.trustedProxies,
        upgradeTimeoutMs: config.upgradeTimeoutMs,
        maxTunnels: config.maxTunnels,
        accessLog: config.accessLog,
        // Serve /health at once and keep trying etcd: a router host may boot before etcd.
        waitForRoutes: false,
        log,
      });
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
      `health and stats on http://${config.admin.host}:${running.adminPort}/health, routes from etcd ${config.etcd.join(',')}\n`);
    void running.ready.then(() => log(`routes loaded: ${running.domains().length} domain(s)`));
    const signal = await stopped;
    log(`${signal}: finishing requests in flight`);
    await running.close();
    return 0;
  },
};
