import { BadRequestError, StackNotFoundError } from '../../hq/errors.js';
import type { GridView, HqControl, PsRow, ReleaseInfo, ServerRow, TopConnection, TopElement, TopView } from '../../hq/index.js';

/**
 * A read-only HqControl with a large stack made up in memory: 500 containers over 10
 * servers, 50 elements in a chain with a query connection every fifth, one server
 * unreachable. For the dashboard's scale test; tests that use it say "fixture" in their title.
 */
export class BigControl implements HqControl {
  static readonly STACK = 'big';
  private tick = 0;

  private check(stack: string): void {
    if (stack !== BigControl.STACK) throw new StackNotFoundError(stack);
  }

  async stacks(): Promise<string[]> {
    return [BigControl.STACK];
  }

  async ps(stack?: string): Promise<PsRow[]> {
    if (stack !== undefined) this.check(stack);
    return Array.from({ length: 500 }, (_, i) => {
      const element = `e${String(i % 50).padStart(2, '0')}`;
      const n = Math.floor(i / 50) + 1;
      return {
        stack: BigControl.STACK, name: element, kind: 'element', container: `${BigControl.STACK}.${element}.${n}`, server: `q-${(i % 10) + 1}`,
        state: i === 7 ? 'restarting' : 'running', health: '-', release: 'v2', restarts: i === 7 ? 3 : 0, rate: 10,
      } satisfies PsRow;
    });
  }

  async top(stack: string): Promise<TopView> {
    this.check(stack);
    this.tick++;
    const at = new Date().toISOString();
    const elements: TopElement[] = Array.from({ length: 50 }, (_, i) => ({
      name: `e${String(i).padStart(2, '0')}`, class: i === 0 ? 'source' : 'stage', scale: 10, rate: 100 + i + this.tick, busy: (i % 10) / 10, stale: false,
      instances: Array.from({ length: 10 }, (__, r) => ({ replica: r + 1, server: `q-${r + 1}`, rate: 10, busy: 0.5, incarnation: `x${r}`, at, ageMs: 100, stale: false, ports: {} })),
    }));
    const connections: TopConnection[] = [];
    for (let i = 1; i < 50; i++) {
      const fill = (i % 10) / 10;
      connections.push({
        kind: 'push', from: { name: elements[i - 1]!.name, port: 'out' }, to: { name: elements[i]!.name, port: 'in' }, rate: 100 + i + this.tick, rateAt: 'in',
        queued: Math.round(fill * 100), queueLimit: 100, fill, level: fill > 0.85 ? 'high' : fill >= 0.6 ? 'mid' : 'low', backpressure: fill > 0.85, stale: false,
      });
      if (i % 5 === 0) {
        connections.push({
          kind: 'query', from: { name: elements[i]!.name, port: 'ask' }, to: { name: elements[i - 5]!.name, port: 'answer' }, rate: 5, rateAt: 'in',
          queued: null, queueLimit: null, fill: null, level: null, backpressure: false, p50Ms: 2, p99Ms: 9, stale: false,
        });
      }
    }
    return { stack, at, release: 'v2', staleAfterMs: 5000, elements, connections };
  }

  async releases(stack: string): Promise<ReleaseInfo[]> {
    this.check(stack);
    const scale = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`e${String(i).padStart(2, '0')}`, 10]));
    const release = (version: number): ReleaseInfo => ({
      stack, version, at: new Date(Date.UTC(2026, 0, version)).toISOString(), reason: 'push', description: `push of ${version}`.padEnd(12, '0'),
      commit: String(version).repeat(40), images: {}, scale, envKeys: ['API_KEY', 'LOG_LEVEL'], urls: [],
    });
    return [release(2), release(1)];
  }

  async env(stack: string): Promise<Record<string, string>> {
    this.check(stack);
    return { API_KEY: 'secret', LOG_LEVEL: 'info' };
  }

  async servers(): Promise<ServerRow[]> {
    return Array.from({ length: 10 }, (_, i) => ({
      id: `q-${i + 1}`, provider: 'digitalocean', address: `10.0.0.${i + 1}`, size: 's-4vcpu-8gb', memory: 8192, used: 50 * 128, free: 8192 - 50 * 128,
      containers: 50, state: i === 3 ? 'unreachable' : 'active', agent: i !== 3, firewall: i === 3 ? 'unknown' : 'on',
    }));
  }

  async grid(): Promise<GridView> {
    const servers = Array.from({ length: 10 }, (_, i) => ({
      id: `q-${i + 1}`, address: `10.0.0.${i + 1}`, size: 8192, used: 50 * 128, free: 8192 - 50 * 128,
      slices: Array.from({ length: 50 }, (__, j) => ({ id: `big.e${String(j).padStart(2, '0')}.${i + 1}`, size: 128 })),
    }));
    return { drawing: '(10 servers, 500 slices)\n', servers, autosize: true, min: 1, max: 12 };
  }

  async scale(): Promise<ReleaseInfo> { throw new BadRequestError('the fixture is read-only'); }
  async logs(): Promise<void> { throw new BadRequestError('the fixture has no logs'); }
  async rollback(): Promise<ReleaseInfo> { throw new BadRequestError('the fixture is read-only'); }
  async setEnv(): Promise<ReleaseInfo> { throw new BadRequestError('the fixture is read-only'); }
  async addServer(): Promise<ServerRow> { throw new BadRequestError('the fixture is read-only'); }
  async removeServer(): Promise<ServerRow> { throw new BadRequestError('the fixture is read-only'); }
  async drainServer(): Promise<ServerRow> { throw new BadRequestError('the fixture is read-only'); }
  async undrainServer(): Promise<ServerRow> { throw new BadRequestError('the fixture is read-only'); }
}
