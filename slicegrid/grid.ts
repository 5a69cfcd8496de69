import { EventEmitter } from 'node:events';
import { Applier, type Apply } from './apply.js';
import { planCompaction } from './compact.js';
import { drawGrid, type DrawOptions } from './draw.js';
import { InvalidSliceGridArgumentError } from './errors.js';
import { GridFile } from './grid-file.js';
import { packerFromJSON } from './grid-json.js';
import { announcer, HANDLER_NAMES, HandlerBlockSource, SOURCE_NAMES } from './handlers.js';
import { blockInfo, Packer, sliceInfo, sortedSlices } from './packer.js';
import { normalizeRequest, planOn, toPlan } from './plan.js';
import { SerialQueue } from './serial-queue.js';
import type {
  BlockInfo,
  BlockSource,
  BlockSpec,
  CallOptions,
  CompactionPlan,
  GridPlan,
  Limits,
  PlanRequest,
  SliceGridEventName,
  SliceGridEvents,
  SliceGridJSON,
  SliceGridOptions,
  SliceInfo,
  SliceRequest,
} from './types.js';
import { checkLimits, normalizeBlock, normalizeSlice } from './validate.js';

// Typed listeners for the grid's own events (declaration merging with the class below).
export interface SliceGrid<C = unknown> {
  on<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  once<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  off<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  addListener<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  prependListener<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
  removeListener<E extends SliceGridEventName>(event: E, listener: SliceGridEvents[E]): this;
}

/**
 * Which block (server) each slice (container) goes on, and when the grid must grow or
 * shrink. Every call that changes the grid is queued behind the ones before it, is planned
 * (`plan.ts`: pure, before anything happens), then carried out (`apply.ts`: the block
 * source, the events, undo, the file), and either completes or leaves the grid as it was.
 * With a `file`, a call resolves once its change is on disk.
 *
 * `C` is the type of the `context` the calls pass on to the block source.
 */
export class SliceGrid<C = unknown> extends EventEmitter {
  readonly autosize: boolean;
  readonly min: number;
  readonly max: number;
  readonly blockSize: number | undefined;
  readonly file: string | undefined;

  private packer = new Packer();
  private readonly queue = new SerialQueue();
  private readonly gridFile: GridFile | undefined;
  private readonly applier: Applier<C>;
  /** The event-handler form, when no block source was given. */
  private readonly handlers: HandlerBlockSource | undefined;
  private loaded = false;
  private lastLimits: Limits | undefined;

  constructor(options: SliceGridOptions<C> = {}) {
    super();
    const { autosize, min, max, blockSize } = checkLimits({
      autosize: options.autosize,
      min: options.min,
      max: options.max,
      blockSize: options.blockSize,
    });
    const { file, blocks } = options;
    if (file !== undefined && (typeof file !== 'string' || file === '')) throw new InvalidSliceGridArgumentError('file must be a path');
    if (blocks !== undefined && (blocks === null || typeof blocks.create !== 'function' || typeof blocks.destroy !== 'function')) {
      throw new InvalidSliceGridArgumentError('blocks must be a block source { create(request), destroy(block, context) }');
    }
    this.autosize = autosize;
    this.min = min;
    this.max = max;
    this.blockSize = blockSize;
    this.file = file;
    this.gridFile = file === undefined ? undefined : new GridFile(file, () => this.queue.run(() => JSON.stringify(this.packer.toJSON())));
    this.handlers = blocks === undefined ? new HandlerBlockSource(this) : undefined;
    this.applier = new Applier<C>({
      packer: () => this.packer,
      limits: () => this.limits(),
      source: blocks ?? (this.handlers as BlockSource<C>),
      names: blocks === undefined ? HANDLER_NAMES : SOURCE_NAMES,
      events: announcer(this),
      file: this.gridFile,
    });
  }

  /**
   * Loads the file (once) and, with autosize, creates blocks up to `min`. Every changing
   * call does this itself first; call it to read a saved grid before changing anything.
   */
  async open(options: CallOptions<C> = {}): Promise<void> {
    await this.change(options.context, () => undefined, false);
  }

  /** Places one slice; resolves with the block it went on. */
  async add(id: string, size: number, tags?: readonly string[], options: { group?: string | null } & CallOptions<C> = {}): Promise<BlockInfo> {
    // Tags and group left out or undefined are the same to normalizeSlice: no spread objects per call.
    const slice = normalizeSlice({ id, size, tags, group: 'group' in options ? options.group : undefined });
    return this.change(options.context, async (apply) => {
      await apply({ kind: 'add', slices: [slice] });
      return blockInfo(slice.block!);
    });
  }

  /**
   * Places a batch together, largest first, all or nothing; resolves with the slices in the
   * order asked, each naming its block.
   */
  async addMany(requests: readonly SliceRequest[], options: CallOptions<C> = {}): Promise<SliceInfo[]> {
    if (!Array.isArray(requests)) throw new InvalidSliceGridArgumentError('addMany takes a list of { id, size, tags?, group? }');
    const slices = requests.map((r) => normalizeSlice(r));
    return this.change(options.context, async (apply) => {
      await apply({ kind: 'add', slices });
      return slices.map((s) => sliceInfo(s, s.block!.id));
    });
  }

  /** Removes a slice; with autosize, its block is destroyed if that left it empty (above `min`). */
  async remove(id: string, options: CallOptions<C> = {}): Promise<SliceInfo> {
    return this.change(options.context, async (apply) => {
      const slice = this.packer.slice(id);
      const from = slice?.block?.id;
      await apply({ kind: 'remove', slices: [id] });
      return sliceInfo(slice!, from!);
    });
  }

  /**
   * Moves a slice to a given block (a step of a compaction plan): `added` there first, then
   * `removed` where it was, then `destroy` if that emptied a block and autosize is on.
   */
  async move(id: string, to: string, options: CallOptions<C> = {}): Promise<SliceInfo> {
    return this.change(options.context, async (apply) => {
      await apply({ kind: 'move', slice: id, to });
      return sliceInfo(this.packer.slice(id)!, to);
    });
  }

  /** Adds a server the caller already has (no `create`). */
  async addBlock(block: BlockSpec, options: CallOptions<C> = {}): Promise<BlockInfo> {
    const spec = normalizeBlock(block);
    return this.change(options.context, async (apply) => {
      await apply({ kind: 'add-block', block: spec });
      return blockInfo(this.packer.block(spec.id)!);
    });
  }

  /**
   * Takes a block out of the grid (no `destroy`: the caller retires the server). Its slices
   * move to other blocks first, largest first, each `added` there then `removed` here.
   */
  async removeBlock(id: string, options: CallOptions<C> = {}): Promise<BlockInfo> {
    return this.change(options.context, async (apply) => {
      const block = this.packer.block(id);
      await apply({ kind: 'remove-block', block: id });
      return blockInfo(block!);
    });
  }

  /**
   * What a change would do, planned on the grid as it is (after loading its file), without
   * doing it: the same plan the call would carry out, or the error it would fail with
   * before any event. With autosize, a grid below `min` is first brought up to it.
   */
  async rehearse(request: PlanRequest): Promise<GridPlan> {
    const normal = normalizeRequest(request);
    return this.queue.run(async () => {
      if (!this.loaded) await this.load();
      return toPlan(planOn(this.packer, normal, this.limits()));
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
  async shrink(options: CallOptions<C> = {}): Promise<BlockInfo[]> {
    return this.change(options.context, async (apply) => [...(await apply({ kind: 'shrink' }))]);
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

  /**
   * Runs one changing call: queued, on a loaded grid, as one transaction of the applier.
   * Resolves once the change is durable (when there is a file), outside the queue so
   * writes can coalesce.
   */
  private async change<T>(context: C | undefined, body: (apply: Apply) => T | Promise<T>, writes = true): Promise<T> {
    const done = await this.queue.run(() =>
      this.loaded ? this.applier.transaction(context, body, writes) : this.loadThen(() => this.applier.transaction(context, body, writes)),
    );
    if (done.durable !== undefined) await done.durable;
    return done.value;
  }

  /** Loads the file, then does `task`: the first call's way in (the queue's task is the transaction itself after that). */
  private async loadThen<T>(task: () => Promise<T>): Promise<T> {
    await this.load();
    return task();
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

  /**
   * What plans keep to: the options, and whether blocks can be created and destroyed now
   * (with the handler form, whether anyone listens). The same object while that holds.
   */
  private limits(): Limits {
    const handlers = this.handlers;
    const canCreate = handlers === undefined || handlers.canCreate;
    const canDestroy = handlers === undefined || handlers.canDestroy;
    let limits = this.lastLimits;
    if (limits === undefined || limits.canCreate !== canCreate || limits.canDestroy !== canDestroy) {
      limits = { autosize: this.autosize, min: this.min, max: this.max, blockSize: this.blockSize, canCreate, canDestroy };
      this.lastLimits = limits;
    }
    return limits;
  }
}
