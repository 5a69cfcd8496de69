import type { Target } from './wiring.js';

/** New targets for one out port: every member it should talk to now. */
export interface PeerChange {
  port: string;
  targets: Target[];
}

/**
 * Where changes of peers come from after start. The wiring gives the first peers; a source
 * reports later ones: the local runner through the control socket or in-process, an etcd watch
 * of `/quarry/stacks/<stack>/endpoints/` on a cluster. The runtime reconnects on each change.
 */
export interface PeerSource {
  /** Starts reporting; called once when the element's ports are up. */
  watch(onChange: (change: PeerChange) => void): void | Promise<void>;
  /** Stops reporting; called when the element stops. */
  close(): void | Promise<void>;
}

/** A PeerSource driven by hand: `set()` reports a change (for runners in the same process, tests). */
export class ManualPeerSource implements PeerSource {
  private listener: ((change: PeerChange) => void) | undefined;
  private readonly early: PeerChange[] = [];

  watch(onChange: (change: PeerChange) => void): void {
    this.listener = onChange;
    for (const change of this.early.splice(0)) onChange(change);
  }

  set(port: string, targets: Target[]): void {
    const change = { port, targets };
    if (this.listener === undefined) this.early.push(change);
    else this.listener(change);
  }

  close(): void {
    this.listener = undefined;
  }
}
