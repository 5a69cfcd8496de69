import { totalmem } from 'node:os';
import type Docker from 'dockerode';
import { listContainers, removeContainer, startContainer, type ContainerSpec } from './containers.js';
import { SliceGrid } from '../slicegrid/index.js';
import type { Cluster, GridView, PlacedContainer, ServerRow } from './cluster.js';
import { SmallModeError } from './errors.js';

export const LOCAL_SERVER = 'local';

/**
 * Small mode: the local docker engine is the one server. Containers reach each other by name
 * on their stack's network; their ports are published on loopback for this machine only.
 */
export class LocalCluster implements Cluster {
  readonly addressing = 'alias' as const;

  constructor(private readonly docker: Docker) {}

  async list(stack?: string, unit?: string): Promise<PlacedContainer[]> {
    return (await listContainers(this.docker, stack, unit)).map((c) => ({ ...c, server: LOCAL_SERVER }));
  }

  async start(specs: ContainerSpec[]): Promise<PromiseSettledResult<PlacedContainer>[]> {
    return Promise.allSettled(specs.map(async (spec) => ({ ...(await startContainer(this.docker, spec)), server: LOCAL_SERVER })));
  }

  async remove(container: PlacedContainer, _progress: unknown, graceSeconds?: number): Promise<void> {
    await removeContainer(this.docker, container.id, graceSeconds);
  }

  engine(): Docker {
    return this.docker;
  }

  host(container: PlacedContainer): string | undefined {
    return container.ip;
  }

  reach(container: PlacedContainer, port: number): { host: string; port: number } | undefined {
    return container.ip ? { host: container.ip, port } : undefined;
  }

  /** The machine as one block: its memory, and what quarry's containers reserve of it. */
  private async picture(): Promise<SliceGrid> {
    const grid = new SliceGrid();
    await grid.addBlock({ id: LOCAL_SERVER, size: Math.floor(totalmem() / (1024 * 1024)) });
    const running = (await this.list()).filter((c) => c.state === 'running' && c.memoryMb > 0);
    // Containers started by hand beyond the machine's memory are drawn as far as they fit.
    for (const c of running) await grid.add(c.name, c.memoryMb).catch(() => undefined);
    return grid;
  }

  async servers(): Promise<ServerRow[]> {
    const grid = await this.picture();
    const block = grid.block(LOCAL_SERVER)!;
    return [{
      id: LOCAL_SERVER, provider: 'local', address: '127.0.0.1', size: null,
      memory: block.size, used: block.used, free: block.free, containers: block.slices.length, state: 'active', agent: false, firewall: 'off',
      // Small mode: HQ's embedded router serves the web traffic, on this machine.
      router: true,
    }];
  }

  async grid(stack?: string): Promise<GridView> {
    const grid = await this.picture();
    return {
      drawing: grid.draw(stack !== undefined ? { stack } : {}),
      servers: grid.blocks().map((b) => ({
        id: b.id, address: '127.0.0.1', size: b.size, used: b.used, free: b.free,
        slices: b.slices.filter((s) => stack === undefined || s.startsWith(`${stack}.`)).map((s) => ({ id: s, size: grid.slice(s)?.size ?? 0 })),
      })),
      autosize: false, min: 1, max: 1,
    };
  }

  healing(): undefined {
    return undefined;
  }

  async addServer(): Promise<ServerRow> {
    throw smallMode();
  }

  async removeServer(): Promise<ServerRow> {
    throw smallMode();
  }

  async close(): Promise<void> {}
}

function smallMode(): SmallModeError {
  return new SmallModeError('this HQ runs in small mode: the local docker engine is its one server. Give its config a `grid` (a provider, min, max, size) to run stacks on servers; see docs/hq.md');
}
