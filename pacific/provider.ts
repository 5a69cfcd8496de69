import { EventEmitter } from 'node:events';
import { ProviderHandlerError } from './errors.js';
import type {
  Progress, ProviderEventName, ProviderEvents, ProviderName, Server, ServerSize, SizeRequest,
} from './types.js';

/**
 * A fleet of servers from one provider. `add`, `remove` and `resize` resolve once the change
 * is done and every handler of its event has run:
 * - `add` resolves when the new server's sshd and docker engine answer; if an `added`
 *   handler fails, the server is removed again and the call fails;
 * - `remove` resolves when the server is gone; a failing `removed` handler fails the call
 *   but cannot bring the server back (the error says so);
 * - `resize` resolves when the server answers at its new size; if a `resized` handler
 *   fails, the call fails and the server keeps its new size (the error says so).
 */
export interface Provider {
  readonly name: ProviderName;
  add(size: SizeRequest): Promise<Server>;
  remove(id: string): Promise<Server>;
  resize(id: string, size: SizeRequest): Promise<Server>;
  /** The fleet's servers, as the provider knows them now. */
  list(): Promise<Server[]>;
  /** One server, or undefined. */
  get(id: string): Promise<Server | undefined>;
  /** Ends connections the provider keeps; the servers stay. */
  close(): Promise<void>;

  on<E extends ProviderEventName>(event: E, listener: ProviderEvents[E]): this;
  once<E extends ProviderEventName>(event: E, listener: ProviderEvents[E]): this;
  off<E extends ProviderEventName>(event: E, listener: ProviderEvents[E]): this;
}

// Typed listeners for the provider's events (declaration merging with the class below).
export interface FleetProvider {
  on<E extends ProviderEventName>(event: E, listener: ProviderEvents[E]): this;
  once<E extends ProviderEventName>(event: E, listener: ProviderEvents[E]): this;
  off<E extends ProviderEventName>(event: E, listener: ProviderEvents[E]): this;
  addListener<E extends ProviderEventName>(event: E, listener: ProviderEvents[E]): this;
  removeListener<E extends ProviderEventName>(event: E, listener: ProviderEvents[E]): this;
}

/**
 * What every provider shares: the awaited events and what a failing handler undoes. A
 * provider implements the four steps below; the public calls wrap them.
 */
export abstract class FleetProvider extends EventEmitter implements Provider {
  abstract readonly name: ProviderName;

  protected abstract create(size: SizeRequest): Promise<Server>;
  protected abstract destroy(server: Server): Promise<void>;
  protected abstract change(server: Server, size: SizeRequest): Promise<Server>;
  abstract list(): Promise<Server[]>;

  async get(id: string): Promise<Server | undefined> {
    return (await this.list()).find((server) => server.id === id);
  }

  async close(): Promise<void> {}

  async add(size: SizeRequest): Promise<Server> {
    const server = await this.create(size);
    try {
      await this.announce('added', server);
    } catch (error) {
      this.progress(server.id, `an 'added' handler failed; removing ${server.id} again`);
      await this.destroy(server).catch(() => undefined);
      throw new ProviderHandlerError('added', `the 'added' handler failed for server ${server.id}: ${messageOf(error)}; the server was removed again`, { cause: error });
    }
    return server;
  }

  async remove(id: string): Promise<Server> {
    const server = await this.require(id);
    await this.destroy(server);
    try {
      await this.announce('removed', server);
    } catch (error) {
      throw new ProviderHandlerError('removed', `the 'removed' handler failed for server ${server.id}: ${messageOf(error)}; the server is gone all the same`, { cause: error });
    }
    return server;
  }

  async resize(id: string, size: SizeRequest): Promise<Server> {
    const server = await this.require(id);
    const before = server.size;
    const after = await this.change(server, size);
    try {
      await this.announce('resized', after, before);
    } catch (error) {
      throw new ProviderHandlerError('resized', `the 'resized' handler failed for server ${server.id}: ${messageOf(error)}; the server keeps its new size ${after.size.slug ?? `${after.size.memory} MB`}`, { cause: error });
    }
    return after;
  }

  /** Says how a long step goes; listeners of `progress` show it. */
  protected progress(server: string | null, message: string): void {
    const progress: Progress = { server, message };
    this.emit('progress', progress);
  }

  protected abstract unknown(id: string): Error;

  private async require(id: string): Promise<Server> {
    const server = await this.get(id);
    if (!server) throw this.unknown(id);
    return server;
  }

  /** Calls the event's handlers in turn, awaiting each; the first failure fails the step. */
  private async announce(event: 'added' | 'removed' | 'resized', server: Server, before?: ServerSize): Promise<void> {
    for (const listener of this.rawListeners(event)) {
      await (listener as (...args: unknown[]) => unknown).call(this, server, before);
    }
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
