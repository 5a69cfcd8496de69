import { EventEmitter } from 'node:events';
import { planCompaction } from './compact.js';
import { drawGrid, type DrawOptions } from './draw.js';
import {
  DuplicateIdError,
  InvalidSliceGridArgumentError,
  SliceGridError,
  SliceGridFullError,
  SliceGridHandlerError,
  SliceGridLimitError,
  SliceTooLargeError,
  UnknownBlockError,
  UnknownSliceError,
} from './errors.js';
import { GridFile } from './grid-file.js';
import { packerFromJSON } from './grid-json.js';
import { blockInfo, Packer, sliceInfo, sortedSlices, type BlockState, type SliceState } from './packer.js';
import { SerialQueue } from './serial-queue.js';
import type {
  BlockInfo,
  BlockSpec,
  CompactionPlan,
  CreateRequest,
  SliceGridEventName,
  SliceGridEvents,
  SliceGridJSON,
  SliceGridOptions,
  SliceInfo,
  SliceRequest,
} from './types.js';
import { UndoLog } from './undo-log.js';
import { checkSize, normalizeBlock, normalizeSlice, type NormalSlice } from './validate.js';

type AnnouncedEvent = Exclude<SliceGridEventName, 'create'>;

// Typed listeners for the grid's own events (declaration merging with the class below).
export interface SliceGrid {
  on<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  once<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  off<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  addListener<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  prependListener<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  removeListener<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
}

/**
 * Which block (server) each slice (container) goes on, and when the grid must grow or
 * shrink. Every call that changes the grid is queued behind the ones before it, awaits
 * its event handlers one by one, and either completes or leaves the grid as it was.
 * With a `file`, a call resolves once its change is on disk.
 */
export class SliceGrid extends EventEmitter {
  readonly autosize: boolean;
  readonly min: number;
  readonly max: number;
  readonly blockSize: number | undefined;
  readonly file: string | undefined;

  private packer = new Packer();
  private readonly queue = new SerialQueue();
  private readonly gridFile: GridFile | undefined;
  private loaded = false;

  constructor(options: SliceGridOptions = {}) {
    super();
    const { autosize = false, min = 0, max = Infinity, file, blockSize } = options;
    if (typeof autosize !== 'boolean') throw new InvalidSliceGridArgumentError('autosize must be true or false');
    if (!Number.isSafeInteger(min) || min < 0) throw new InvalidSliceGridArgumentError(`min must be a whole number of blocks, 0 or more, not ${min}`);
    if (max !== Infinity && (!Number.isSafeInteger(max) || max < min)) {
      throw new InvalidSliceGridArgumentError(`max must be a whole number of blocks no smaller than min (${min}), not ${max}`);
    }
    if (blockSize !== undefined) checkSize(blockSize, 'blockSize');
    if (autosize && blockSize === undefined) {
      throw new InvalidSliceGridArgumentError("autosize needs blockSize: the size in MB of the servers 'create' is asked for");
    }
    if (file !== undefined && (typeof file !== 'string' || file === '')) throw new InvalidSliceGridArgumentError('file must be a path');
    this.autosize = autosize;
    this.min = min;
    this.max = max;
    this.blockSize = blockSize;
    this.file = file;
    this.gridFile = file === undefined ? undefined : new GridFile(file, () => this.queue.run(() => this.serialize()));
  }

  /**
   * Loads the file (once) and, with autosize, creates blocks up to `min`. Every changing
   * call does this itself first; call it to read a saved grid before changing anything.
   */
  async open(): Promise<void> {
    await this.change(async () => undefined, false);
  }

  /** Places one slice; resolves with the block it went on. */
  async add(id: string, size: number, tags?: readonly string[], options: { group?: string | null } = {}): Promise<BlockInfo> {
    const slice = normalizeSlice({ id, size, ...(tags === undefined ? {} : { tags }), ...('group' in options ? { group: options.group } : {}) });
    return this.change(async (undo) => {
      const [placed] = await this.placeAll([slice], undo);
      return blockInfo(placed!.block!);
    });
  }

  /**
   * Places a batch together, largest first, all or nothing; resolves with the slices in the
   * order asked, each naming its block.
   */
  async addMany(requests: readonly SliceRequest[]): Promise<SliceInfo[]> {
    if (!Array.isArray(requests)) throw new InvalidSliceGridArgumentError('addMany takes a list of { id, size, tags?, group? }');
    const slices = requests.map(normalizeSlice);
    return this.change(async (undo) => {
      const placed = await this.placeAll(slices, undo);
      return placed.map((s) => sliceInfo(s, s.block!.id));
    });
  }

  /** Removes a slice; with autosize, its block is destroyed if that left it empty (above `min`). */
  async remove(id: string): Promise<SliceInfo> {
    return this.change(async (undo) => {
      const slice = this.packer.slice(id);
      if (slice?.block === undefined) throw new UnknownSliceError(id);
      const block = slice.block!;
      await this.unplaceAnnounced(slice);
      this.packer.unregister(slice);
      undo.push(async () => {
        this.packer.register(slice);
        try {
          await this.placeAnnounced(slice, block);
        } catch (error) {
          this.packer.unregister(slice);
          throw error;
        }
      });
      const info = sliceInfo(slice, block.id);
      await this.destroyIfEmptied(block);
      return info;
    });
  }

  /**
   * Moves a slice to a given block (a step of a compaction plan): `added` there first, then
   * `removed` where it was, then `destroy` if that emptied a block and autosize is on.
   */
  async move(id: string, to: string): Promise<SliceInfo> {
    return this.change(async (undo) => {
      const slice = this.packer.slice(id);
      if (slice?.block === undefined) throw new UnknownSliceError(id);
      const target = this.packer.block(to);
      if (target === undefined) throw new UnknownBlockError(to);
      const from = slice.block!;
      if (from === target) return sliceInfo(slice, to);
      const missing = slice.tags.filter((tag) => !target.tags.includes(tag));
      if (missing.length > 0) {
        throw new InvalidSliceGridArgumentError(`slice "${id}" needs tags [${slice.tags.join(', ')}] and block "${to}" lacks [${missing.join(', ')}]`);
      }
      if (target.free < slice.size) {
        throw new SliceGridFullError(`block "${to}" has ${target.free} MB free and slice "${id}" needs ${slice.size} MB`);
      }
      await this.relocate(slice, target, undo);
      await this.destroyIfEmptied(from);
      return sliceInfo(slice, to);
    });
  }

  /** Adds a server the caller already has (no `create`). */
  async addBlock(block: BlockSpec): Promise<BlockInfo> {
    const spec = normalizeBlock(block);
    return this.change(async () => {
      if (this.packer.block(spec.id) !== undefined) throw new DuplicateIdError(`the grid already has a block "${spec.id}"`);
      if (this.packer.blockCount >= this.max) {
        throw new SliceGridLimitError(`the grid has its max of ${this.max} blocks: raise max or remove a block before adding "${spec.id}"`);
      }
      return blockInfo(this.packer.addBlock(spec));
    });
  }

  /**
   * Takes a block out of the grid (no `destroy`: the caller retires the server). Its slices
   * move to other blocks first, largest first, each `added` there then `removed` here.
   */
  async removeBlock(id: string): Promise<BlockInfo> {
    return this.change(async (undo) => {
      const block = this.packer.block(id);
      if (block === undefined) throw new UnknownBlockError(id);
      if (this.packer.blockCount <= this.min) {
        throw new SliceGridLimitError(
          `the grid has ${this.packer.blockCount} block(s) and its min is ${this.min}: add a block before removing "${id}"`,
        );
      }
      const slices = [...block.slices].sort(largestFirst);
      const avoid = new Set([block]);
      if (!this.canAlwaysGrow(slices)) this.rehearse(slices, avoid);
      for (const slice of slices) {
        const target = this.packer.find(slice, avoid) ?? (await this.grow(slice, undo));
        await this.relocate(slice, target, undo);
      }
      this.packer.removeBlock(block);
      return blockInfo(block);
    });
  }

  /**
   * A plan that empties blocks by moving slices onto others; the grid does not change.
   * Apply it with `move()` for each step; with autosize, emptied blocks are then destroyed.
   */
  async compact(): Promise<CompactionPlan> {
    return this.queue.run(async () => {
      await this.load();
      return planCompaction(packerFromJSON(this.packer.toJSON(), 'the grid'), this.min);
    });
  }

  /**
   * With autosize, destroys the empty blocks above `min` (oldest kept): those a compaction
   * plan left empty, or ones that emptied while the grid was at `min`. Resolves with them.
   */
  async shrink(): Promise<BlockInfo[]> {
    return this.change(async () => {
      const destroyed: BlockInfo[] = [];
      if (!this.autosize || this.listenerCount('destroy') === 0) return destroyed;
      const empty = [...this.packer.blocks()].filter((b) => b.slices.length === 0).reverse();
      for (const block of empty) {
        if (this.packer.blockCount <= this.min) break;
        // A destroy cannot be undone: one refused stops here, and those before it stand.
        try {
          await this.removeAnnounced(block);
        } catch (error) {
          if (destroyed.length === 0) throw error;
          throw new SliceGridHandlerError(
            'destroy',
            `${messageOf(error).replace(/; the grid is as it was$/, '')}; blocks ${destroyed.map((b) => `"${b.id}"`).join(', ')} were destroyed before it`,
            error,
          );
        }
        destroyed.push(blockInfo(block));
      }
      return destroyed;
    });
  }

  /** Resolves when every change so far is on disk. */
  async flush(): Promise<void> {
    await this.queue.run(() => undefined);
    await this.gridFile?.flush();
  }

  blocks(): BlockInfo[] {
    return [...this.packer.blocks()].map(blockInfo);
  }

  slices(): SliceInfo[] {
    const out: SliceInfo[] = [];
    for (const block of this.packer.blocks()) for (const s of sortedSlices(block)) out.push(sliceInfo(s, block.id));
    return out;
  }

  block(id: string): BlockInfo | undefined {
    const block = this.packer.block(id);
    return block === undefined ? undefined : blockInfo(block);
  }

  slice(id: string): SliceInfo | undefined {
    const slice = this.packer.slice(id);
    return slice?.block === undefined ? undefined : sliceInfo(slice, slice.block.id);
  }

  toJSON(): SliceGridJSON {
    return this.packer.toJSON();
  }

  /** The grid as text, for `quarry grid`. */
  draw(options?: DrawOptions): string {
    return drawGrid([...this.packer.blocks()], options);
  }

  // --- the machinery of a change -------------------------------------------------------

  /**
   * Runs one changing call: queued, on a loaded grid, all or nothing. Resolves once the
   * change is durable (when there is a file), outside the queue so writes can coalesce.
   */
  private async change<T>(body: (undo: UndoLog) => Promise<T>, writes = true): Promise<T> {
    let durable: Promise<void> | undefined;
    const result = await this.queue.run(async () => {
      if (!this.loaded) await this.load();
      const grew = this.needsFill() && (await this.fillToMin());
      const undo = new UndoLog();
      try {
        const value = await body(undo);
        if (this.gridFile !== undefined && (writes || grew)) durable = this.gridFile.save(() => this.serialize());
        return value;
      } catch (error) {
        const failures = await undo.rollback();
        if (this.gridFile !== undefined && (grew || failures.length > 0)) durable = this.gridFile.save(() => this.serialize());
        durable?.catch(() => undefined); // the call's own error is the one to report
        throw withUndoFailures(error, failures);
      }
    });
    if (durable !== undefined) await durable;
    return result;
  }

  private async load(): Promise<void> {
    if (this.loaded || this.gridFile === undefined) {
      this.loaded = true;
      return;
    }
    const json = await this.gridFile.load();
    if (json !== undefined) this.packer = packerFromJSON(json, this.gridFile.path);
    this.loaded = true;
  }

  private needsFill(): boolean {
    return this.autosize && this.packer.blockCount < this.min && this.listenerCount('create') > 0;
  }

  /** With autosize, creates blocks up to `min`; all or none. Returns whether it created any. */
  private async fillToMin(): Promise<boolean> {
    const undo = new UndoLog();
    try {
      while (this.packer.blockCount < this.min) {
        await this.createBlock({ size: this.blockSize!, tags: [], reason: 'min' }, undo);
      }
    } catch (error) {
      throw withUndoFailures(error, await undo.rollback());
    }
    return true;
  }

  private async placeAll(states: SliceState[], undo: UndoLog): Promise<SliceState[]> {
    // Claim every id first (a duplicate fails the call before anything happens); given
    // back last when the call fails, once every slice is off its block again.
    const registered: SliceState[] = [];
    const unregister = (): void => {
      for (const s of registered) if (s.block === undefined) this.packer.unregister(s);
    };
    try {
      for (const s of states) {
        this.packer.register(s);
        registered.push(s);
      }
    } catch (error) {
      unregister();
      throw error;
    }
    undo.push(unregister);
    // Largest first packs tighter; the sort is stable, so equal sizes keep the caller's order.
    const order = states.length > 1 ? [...states].sort(largestFirst) : states;
    if (!this.canAlwaysGrow(order)) this.rehearse(order);
    const announce = this.listenerCount('added') > 0;
    // Undo steps: one per run of placements between two creates, so that rolling back
    // (newest first) empties each created block before it is destroyed.
    let run: SliceState[] | undefined;
    for (const slice of order) {
      let block = this.packer.find(slice);
      if (block === undefined) {
        block = await this.grow(slice, undo);
        run = undefined;
      }
      this.packer.place(slice, block);
      if (announce) {
        try {
          await this.announce('added', `slice "${slice.id}" on block "${block.id}"`, blockInfo(block), sliceInfo(slice, block.id));
        } catch (error) {
          this.packer.unplace(slice);
          throw error;
        }
      }
      if (run === undefined) {
        const mine: SliceState[] = (run = []);
        undo.push(() => this.unplaceAll(mine));
      }
      run.push(slice);
    }
    return states;
  }

  /** Whether a placement can fail only through a handler: growth is unlimited. */
  private canAlwaysGrow(slices: readonly NormalSlice[]): boolean {
    if (!this.autosize || this.max !== Infinity || this.listenerCount('create') === 0) return false;
    const blockSize = this.blockSize!;
    return slices.every((s) => s.size <= blockSize);
  }

  /**
   * Places the slices on the grid as it is plus the blocks it would create, then undoes it
   * all: a batch that cannot fit fails here, before any event, instead of half-way.
   */
  private rehearse(slices: readonly SliceState[], avoid?: ReadonlySet<BlockState>): void {
    const done: Array<{ slice: SliceState; from: BlockState | undefined }> = [];
    const planned: BlockState[] = [];
    try {
      for (const slice of slices) {
        let block = this.packer.find(slice, avoid);
        if (block === undefined) {
          this.checkGrowth(slice);
          const id = `planned block ${planned.length + 1}`;
          block = this.packer.addBlock({ id, size: this.blockSize!, tags: slice.tags, tagKey: slice.tagKey });
          planned.push(block);
        }
        const from = slice.block;
        if (from !== undefined) this.packer.unplace(slice);
        this.packer.place(slice, block);
        done.push({ slice, from });
      }
    } finally {
      for (let i = done.length - 1; i >= 0; i--) {
        const { slice, from } = done[i]!;
        this.packer.unplace(slice);
        if (from !== undefined) this.packer.place(slice, from);
      }
      for (const block of planned) this.packer.removeBlock(block);
    }
  }

  /** Throws the error that says why the grid cannot grow for this slice, if it cannot. */
  private checkGrowth(slice: NormalSlice): void {
    const needs = `slice "${slice.id}" (${slice.size} MB${slice.tags.length > 0 ? `, tags ${slice.tags.join(',')}` : ''})`;
    if (!this.autosize) {
      let largest = 0;
      for (const b of this.packer.blocks()) if (slice.tags.every((t) => b.tags.includes(t))) largest = Math.max(largest, b.size);
      if (largest === 0 && slice.tags.length > 0) {
        throw new SliceGridFullError(`${needs} fits on no block: no block has tags ${slice.tags.join(',')}, and autosize is off: add a block with them`);
      }
      if (largest > 0 && slice.size > largest) {
        throw new SliceTooLargeError(`${needs} is larger than any block (the largest is ${largest} MB): give it less memory or add a bigger block`);
      }
      throw new SliceGridFullError(`${needs} fits on no block and autosize is off: add a block, remove slices, or turn autosize on`);
    }
    if (slice.size > this.blockSize!) {
      throw new SliceTooLargeError(
        `${needs} fits on no block and is larger than the ${this.blockSize} MB blocks the grid creates: give it less memory, raise blockSize, or add a bigger block`,
      );
    }
    if (this.packer.blockCount >= this.max) {
      throw new SliceGridFullError(`${needs} fits on no block and the grid is at its max of ${this.max} blocks: raise max, remove slices, or compact`);
    }
    if (this.listenerCount('create') === 0) {
      throw new SliceGridFullError(`${needs} fits on no block and nothing handles 'create': listen for 'create' to make servers`);
    }
  }

  /** A new block for a slice that fits nowhere: `create`, checked against what the slice needs. */
  private async grow(slice: SliceState, undo: UndoLog): Promise<BlockState> {
    this.checkGrowth(slice);
    const request: CreateRequest = {
      size: this.blockSize!,
      tags: slice.tags,
      reason: 'full',
      slice: { id: slice.id, size: slice.size, tags: slice.tags, group: slice.group },
    };
    const block = await this.createBlock(request, undo);
    if (!this.packer.fits(slice, block)) {
      throw new SliceGridHandlerError(
        'create',
        `the 'create' handler returned block "${block.id}" (${block.size} MB, tags [${block.tags.join(', ')}]) but slice "${slice.id}" needs ${slice.size} MB with tags [${slice.tags.join(', ')}]; the grid is as it was`,
        undefined,
      );
    }
    return block;
  }

  private async createBlock(request: CreateRequest, undo: UndoLog): Promise<BlockState> {
    const asked = `a ${request.size} MB block${request.tags.length > 0 ? ` tagged ${request.tags.join(',')}` : ''}${
      request.slice === undefined ? ` (the grid's min is ${this.min})` : ` for slice "${request.slice.id}"`
    }`;
    let spec: unknown;
    for (const listener of this.rawListeners('create')) {
      try {
        spec = await (listener as SliceGridEvents['create']).call(this, request);
      } catch (error) {
        throw new SliceGridHandlerError('create', `the 'create' handler failed, asked for ${asked}: ${messageOf(error)}; the grid is as it was`, error);
      }
      if (spec !== undefined) break;
    }
    let normal;
    try {
      if (spec === undefined) throw new SliceGridError('it returned nothing');
      normal = normalizeBlock(spec as BlockSpec, 'block');
    } catch (error) {
      throw new SliceGridHandlerError(
        'create',
        `the 'create' handler, asked for ${asked}, did not return a block { id, size, tags? }: ${messageOf(error)}; if it made a server, destroy that by hand`,
        error,
      );
    }
    if (this.packer.block(normal.id) !== undefined) {
      throw new SliceGridHandlerError('create', `the 'create' handler returned block "${normal.id}", which the grid already has`, undefined);
    }
    const block = this.packer.addBlock(normal);
    undo.push(async () => {
      // A block that still holds slices (their undo failed) exists for real: keep it.
      if (block.slices.length > 0 || this.packer.block(block.id) !== block) return;
      await this.removeAnnounced(block);
    });
    return block;
  }

  /** With autosize, destroys a block the call just emptied, unless that would go below `min`. */
  private async destroyIfEmptied(block: BlockState): Promise<void> {
    if (!this.autosize || block.slices.length > 0 || this.packer.block(block.id) !== block) return;
    if (this.packer.blockCount <= this.min || this.listenerCount('destroy') === 0) return;
    await this.removeAnnounced(block);
  }

  /** Moves a placed slice, make before break: `added` on the target, then `removed` where it was. */
  private async relocate(slice: SliceState, target: BlockState, undo: UndoLog): Promise<void> {
    const from = slice.block!;
    this.shift(slice, target);
    try {
      await this.announce('added', `slice "${slice.id}" on block "${target.id}"`, blockInfo(target), sliceInfo(slice, target.id));
    } catch (error) {
      this.shift(slice, from);
      throw error;
    }
    let stoppedThere = false;
    undo.push(async () => {
      this.shift(slice, from);
      if (stoppedThere) {
        try {
          await this.announce('added', `slice "${slice.id}" on block "${from.id}"`, blockInfo(from), sliceInfo(slice, from.id));
        } catch (error) {
          this.shift(slice, target);
          throw error;
        }
      }
      await this.announce('removed', `slice "${slice.id}" on block "${target.id}"`, blockInfo(target), sliceInfo(slice, target.id));
    });
    await this.announce('removed', `slice "${slice.id}" on block "${from.id}"`, blockInfo(from), sliceInfo(slice, from.id));
    stoppedThere = true;
  }

  private shift(slice: SliceState, to: BlockState): void {
    this.packer.unplace(slice);
    this.packer.place(slice, to);
  }

  private async placeAnnounced(slice: SliceState, block: BlockState): Promise<void> {
    this.packer.place(slice, block);
    try {
      await this.announce('added', `slice "${slice.id}" on block "${block.id}"`, blockInfo(block), sliceInfo(slice, block.id));
    } catch (error) {
      this.packer.unplace(slice);
      throw error;
    }
  }

  /** Takes slices off, newest first, each `removed`; a refusal keeps that slice and the rest go on. */
  private async unplaceAll(slices: readonly SliceState[]): Promise<void> {
    const failures: unknown[] = [];
    for (let i = slices.length - 1; i >= 0; i--) {
      try {
        await this.unplaceAnnounced(slices[i]!);
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures);
  }

  private async unplaceAnnounced(slice: SliceState): Promise<void> {
    const block = this.packer.unplace(slice);
    try {
      await this.announce('removed', `slice "${slice.id}" on block "${block.id}"`, blockInfo(block), sliceInfo(slice, block.id));
    } catch (error) {
      this.packer.place(slice, block);
      throw error;
    }
  }

  private async removeAnnounced(block: BlockState): Promise<void> {
    this.packer.removeBlock(block);
    try {
      await this.announce('destroy', `block "${block.id}"`, blockInfo(block));
    } catch (error) {
      this.packer.reinsert(block);
      throw error;
    }
  }

  /** Calls the event's handlers in turn, awaiting each; the first failure fails the step. */
  private async announce(event: AnnouncedEvent, what: string, ...args: unknown[]): Promise<void> {
    for (const listener of this.rawListeners(event)) {
      try {
        await (listener as (...a: unknown[]) => unknown).apply(this, args);
      } catch (error) {
        throw new SliceGridHandlerError(event, `the '${event}' handler failed for ${what}: ${messageOf(error)}; the grid is as it was`, error);
      }
    }
  }

  private serialize(): string {
    return JSON.stringify(this.packer.toJSON());
  }
}

function largestFirst(a: NormalSlice, b: NormalSlice): number {
  return b.size - a.size;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The call's error, restated when undoing it failed too (the grid may not match the servers). */
function withUndoFailures(error: unknown, failures: unknown[]): unknown {
  if (failures.length === 0) return error;
  const event = failures[0] instanceof SliceGridHandlerError ? failures[0].event : 'undo';
  const base = messageOf(error).replace(/; the grid is as it was$/, '');
  return new SliceGridHandlerError(
    event,
    `${base}; undoing what the call had done failed too (${failures.map(messageOf).map((m) => m.replace(/; the grid is as it was$/, '')).join('; ')}): the grid keeps what could not be undone and may not match the servers`,
    error,
    failures,
  );
}
