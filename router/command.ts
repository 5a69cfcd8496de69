import { loadConfig, parseConfigFlag, stopSignal } from '../config/index.js';
import { QuarryError } from '../errors/index.js';
import { routerConfigSchema } from './config.js';
import { startRouter } from './router.js';
import { runRouterWorker, WORKER_ENV } from './worker.js';
import { startRouterWorkers } from './workers.js';

/** Where `quarry router` writes, and what it reads its config relative to. */
export interface RouterCommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/**
 * `quarry router [--config URL]` until SIGINT or SIGTERM: the command line's `quarry router`
 * and the agent image's `router --config URL` (the container `quarry-router` on a grid's
 * router hosts) both run this. Resolves with the exit code; a bad config throws a ConfigError.
 */
export async function runRouterCommand(argv: string[], io: RouterCommandIO): Promise<number> {
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
  const etcdTls = config.etcdTls;
  const report = config.report;
  let running;
  try {
    running = config.workers === 1
      ? await startRouter({
        ...options,
        ...(etcdTls && { etcdTls }),
        ...(report && { report }),
        admin: config.admin,
        // Serve /health at once and keep trying etcd: a router host may boot before etcd.
        waitForRoutes: false,
        log,
      })
      : await startRouterWorkers({ workers: config.workers, router: options, ...(etcdTls && { etcdTls }), ...(report && { report }), admin: config.admin, log });
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
    `${etcdTls ? ' over TLS' : ''}${config.workers > 1 ? `, ${config.workers} workers` : ''}` +
    `${report ? `, reporting as /quarry/routers/${report.id}` : ''}\n`);
  const serving = running;
  void serving.ready.then(() => log(`routes loaded: ${'domains' in serving ? `${serving.domains().length} domain(s)` : `in all ${config.workers} workers`}`));
  const signal = await stopped;
  log(`${signal}: finishing requests in flight`);
  await running.close();
  return 0;
}
