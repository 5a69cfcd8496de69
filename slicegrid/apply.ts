import { SliceGridError, SliceGridHandlerError } from './errors.js';
import type { GridFile } from './grid-file.js';
import { messageOf, type Announcer, type SourceNames } from './handlers.js';
import { blockInfo, sliceInfo, type BlockState, type Packer, type SliceState } from './packer.js';
import { planOn, planPlacements, type Drafted, type NewBlock, type NormalRequest } from './plan.js';
import type { BlockInfo, BlockRequest, BlockSource, BlockSpec, Limits } from './types.js';
import { UndoLog } from './undo-log.js';
import { normalizeBlock } from './validate.js';

/** What the applier works with; SliceGrid provides it. */
export interface ApplierHost<C> {
  /** The allocation (SliceGrid replaces it when it loads its file). */
  packer(): Packer;
  limits(): Limits;
  source: BlockSource<C>;
  /** How errors name the source's calls. */
  names: SourceNames;
  events: Announcer;
  file: GridFile | undefined;
}

/**
 * Plans a change and carries the plan out, as one step of a transaction; gives the blocks it
 * destroyed (as they were just before). A promise when the plan waits for something (a block
 * to create or destroy, a listener to announce to); the list itself when it was done at once.
 */
export type Apply = (request: NormalRequest) => BlockInfo[] | Promise<BlockInfo[]>;

/** One call being carried out. */
interface Call<C> {
  context: C | undefined;
  /** The grid's limits as the call began. */
  limits: Limits;
  undo: UndoLog;
  /** Part of the call stands even if it fails (a destroy was done): the file must know. */
  stands: boolean;
}

/**
 * The applier: carries out the planner's plans. It asks the block source for the blocks a
 * plan creates and destroys (with the call's context), makes the placements and removals,
 * announces each step (`added`, `removed`) once it is made, undoes the steps already taken
 * when one fails, and writes the grid to its file.
 *
 * Undo: each step that happened pushes its inverse on the call's undo log (a created
 * block is destroyed, an added slice removed, a removed slice added back, a moved slice
 * moved back); on failure they run newest first, so the grid is as it was before the
 * call. Placements between two creates are undone as one run, so each created block is
 * emptied before it is destroyed. A destroy cannot be undone: it is always last.
 */
export class Applier<C> {
  constructor(private readonly host: ApplierHost<C>) {}

  /**
   * Runs one changing call (inside the grid's queue, on a loaded grid): creates blocks up
   * to `min` first (all or none, and kept even if the call then fails), then `body`, which
   * plans and applies through `apply`. All or nothing; with a file, the state is written
   * after a change, and `durable` resolves once it is on disk.
   */
  async transaction<T>(
    context: C | undefined,
    body: (apply: Apply) => T | Promise<T>,
    writes: boolean,
  ): Promise<{ value: T; durable: Promise<void> | undefined }> {
    const file = this.host.file;
    const limits = this.host.limits();
    const grew = this.needsFill(limits) && (await this.fill(context, limits));
    const call: Call<C> = { context, limits, undo: new UndoLog(), stands: false };
    try {
      const value = await body((request) => this.planAndApply(request, call));
      const durable = file !== undefined && (writes || grew) ? file.save(() => this.serialize()) : undefined;
      return { value, durable };
    } catch (error) {
      const failures = await call.undo.rollback();
      // The call's own error is the one to report; the next change writes again.
      if (file !== undefined && (grew || call.stands || failures.length > 0)) file.save(() => this.serialize()).catch(() => undefined);
      throw withUndoFailures(error, failures);
    }
  }

  private needsFill({ autosize, canCreate, min }: Limits): boolean {
    return autosize && canCreate && this.host.packer().blockCount < min;
  }

  /** Creates blocks up to `min`; all or none. */
  private async fill(context: C | undefined, limits: Limits): Promise<boolean> {
    const call: Call<C> = { context, limits, undo: new UndoLog(), stands: false };
    try {
      await this.planAndApply({ kind: 'fill' }, call);
    } catch (error) {
      throw withUndoFailures(error, await call.undo.rollback());
    }
    return true;
  }

  /**
   * Plans the change and carries the plan out. A batch's ids are claimed first (a duplicate
   * fails the call before anything happens, as it always did), so that the planner finds
   * them claimed by the very slices it plans.
   */
  private planAndApply(request: NormalRequest, call: Call<C>): BlockInfo[] | Promise<BlockInfo[]> {
    const packer = this.host.packer();
    if (request.kind === 'add') this.claim(request.slices, call.undo);
    const plan = planOn(packer, request, call.limits, request.kind === 'add');
    return this.waits(plan) ? this.apply(plan, request, call) : this.applyNow(plan, request, call);
  }

  /**
   * Whether carrying the plan out waits for anything: a block to create or destroy, a slice
   * to take off or move (announced), a listener of `added`.
   */
  private waits(plan: Drafted): boolean {
    return (
      plan.newBlocks.length > 0 ||
      plan.removals.length > 0 ||
      plan.froms.length > 0 ||
      plan.destroys.length > 0 ||
      (plan.slices.length > 0 && this.host.events.listens('added'))
    );
  }

  /**
   * Carries out, at once, a plan that waits for nothing (most calls: slices onto blocks the
   * grid has, nobody listening): the same steps as `apply`, without a promise per call.
   */
  private applyNow(plan: Drafted, request: NormalRequest, call: Call<C>): BlockInfo[] {
    const packer = this.host.packer();
    if (plan.addBlock !== undefined && request.kind === 'add-block') packer.addBlock(request.block);
    const { slices, targets } = plan;
    if (slices.length > 0) {
      let placed = 0;
      call.undo.push(() => this.unplaceAll(placed === slices.length ? slices : slices.slice(0, placed)));
      for (; placed < slices.length; placed++) packer.place(slices[placed]!, targets[placed]!);
    }
    if (plan.removeBlock !== undefined) packer.removeBlock(packer.block(plan.removeBlock)!);
    return NONE;
  }

  /**
   * Carries out a plan of `request`, in the order `GridPlan` describes. The placements are
   * made in order, each planned block created when its first slice comes; if the source
   * returns a block other than planned (another size or tags), the rest is planned again
   * on the grid as it then is, so placement is what it would have been had the block been
   * known in advance.
   */
  private async apply(drafted: Drafted, request: NormalRequest, call: Call<C>): Promise<BlockInfo[]> {
    const plan = drafted;
    const packer = this.host.packer();
    // The blocks made so far, by their place in `newBlocks`.
    const made: Array<BlockState | undefined> = plan.newBlocks.length > 0 ? [] : NONE;
    let again = false;
    for (let n = 0; n < plan.newBlocks.length; n++) {
      const planned = plan.newBlocks[n]!;
      if (planned.reason !== 'min') continue;
      const block = await this.create(planned, plan.drafts[n]!, undefined, call);
      made[n] = block;
      again ||= block !== plan.drafts[n];
    }
    for (const removal of plan.removals) await this.removeSlice(packer.slice(removal.slice)!, call.undo);
    if (plan.addBlock !== undefined && request.kind === 'add-block') packer.addBlock(request.block);

    if (plan.slices.length > 0) {
      const leaving = plan.removeBlock === undefined ? undefined : packer.block(plan.removeBlock);
      const avoid = leaving === undefined ? undefined : new Set([leaving]);
      const moving = plan.froms.length > 0;
      const announce = this.host.events.listens('added');
      if (again) {
        // A block made for `min` is not the one planned: plan the placements again on the
        // grid as it now is (those blocks are existing blocks to that plan).
        drafted = planPlacements(packer, plan.slices, avoid, call.limits);
        made.length = 0;
      }
      let { slices, targets, draftSeq, newBlocks, drafts } = drafted;
      // Undo steps: one per run of placements between two creates, so that rolling back
      // (newest first) empties each created block before it is destroyed.
      let run: SliceState[] | undefined;
      for (let i = 0; i < slices.length; i++) {
        const slice = slices[i]!;
        let block = targets[i]!;
        again = false;
        if (block.seq >= draftSeq) {
          const n = block.seq - draftSeq;
          const there = made[n];
          if (there !== undefined) block = there;
          else {
            const draft = drafts[n]!;
            block = await this.create(newBlocks[n]!, draft, slice, call);
            made[n] = block;
            run = undefined;
            again = block !== draft;
          }
        }
        if (moving) await this.relocate(slice, block, call.undo);
        else {
          packer.place(slice, block);
          if (announce) {
            try {
              await this.announce('added', slice, block);
            } catch (error) {
              packer.unplace(slice);
              throw error;
            }
          }
          if (run === undefined) {
            const mine: SliceState[] = (run = []);
            call.undo.push(() => this.unplaceAll(mine));
          }
          run.push(slice);
        }
        if (again && i + 1 < slices.length) {
          ({ slices, targets, draftSeq, newBlocks, drafts } = planPlacements(packer, slices.slice(i + 1), avoid, call.limits));
          made.length = 0;
          i = -1;
        }
      }
    }

    if (plan.removeBlock !== undefined) packer.removeBlock(packer.block(plan.removeBlock)!);
    return plan.destroys.length === 0 ? NONE : this.destroy(plan.destroys, call);
  }

  /** Claims every id of a batch before any is placed; given back when the call fails, once each is off its block again. */
  private claim(slices: readonly SliceState[], undo: UndoLog): void {
    const packer = this.host.packer();
    try {
      for (const s of slices) packer.register(s);
    } catch (error) {
      // Those not claimed yet hold no id (unregister gives back only a slice's own claim).
      unclaim(packer, slices);
      throw error;
    }
    undo.push(() => unclaim(packer, slices));
  }

  /**
   * Asks the source for a planned block: for `slice` (it must fit), or for `min`. A block as
   * planned takes over its placeholder (`draft`); another one is a block of its own, and the
   * caller plans again. Undone by destroying it.
   */
  private async create(planned: NewBlock, draft: BlockState, slice: SliceState | undefined, call: Call<C>): Promise<BlockState> {
    const packer = this.host.packer();
    const names = this.host.names;
    const request: BlockRequest<C> =
      slice === undefined
        ? { size: planned.size, tags: [], reason: 'min', context: call.context }
        : {
            size: planned.size,
            tags: slice.tags,
            reason: 'full',
            slice: { id: slice.id, size: slice.size, tags: slice.tags, group: slice.group },
            context: call.context,
          };
    let spec: unknown;
    try {
      spec = await this.host.source.create(request);
    } catch (error) {
      throw new SliceGridHandlerError('create', `${names.create} failed, asked for ${asked(planned, slice, call)}: ${messageOf(error)}; the grid is as it was`, error);
    }
    let normal;
    try {
      if (spec === undefined) throw new SliceGridError('it returned nothing');
      normal = normalizeBlock(spec as BlockSpec, 'block');
    } catch (error) {
      throw new SliceGridHandlerError(
        'create',
        `${names.create}, asked for ${asked(planned, slice, call)}, did not return a block { id, size, tags? }: ${messageOf(error)}; if it made a server, destroy that by hand`,
        error,
      );
    }
    if (packer.block(normal.id) !== undefined) {
      throw new SliceGridHandlerError('create', `${names.create} returned block "${normal.id}", which the grid already has`, undefined);
    }
    const block = asPlanned(normal, planned) ? packer.adoptDraft(draft, normal) : packer.addBlock(normal);
    call.undo.push(async () => {
      // A block that still holds slices (their undo failed) exists for real: keep it.
      if (block.slices.length > 0 || packer.block(block.id) !== block) return;
      await this.destroyBlock(block, call.context);
    });
    if (slice !== undefined && !packer.fits(slice, block)) {
      throw new SliceGridHandlerError(
        'create',
        `${names.create} returned block "${block.id}" (${block.size} MB, tags [${block.tags.join(', ')}]) but slice "${slice.id}" needs ${slice.size} MB with tags [${slice.tags.join(', ')}]; the grid is as it was`,
        undefined,
      );
    }
    return block;
  }

  /**
   * Destroys the plan's emptied blocks, last. The first refusal fails the call (undone as a
   * whole); once one block is destroyed the call stands, and a later refusal stops there
   * with an error that names the blocks destroyed before it.
   */
  private async destroy(ids: readonly string[], call: Call<C>): Promise<BlockInfo[]> {
    const destroyed: BlockInfo[] = [];
    const packer = this.host.packer();
    const { min } = call.limits;
    for (const id of ids) {
      const block = packer.block(id);
      // As planned, unless a handler changed the grid under the call: only empty blocks, above min.
      if (block === undefined || block.slices.length > 0) continue;
      if (packer.blockCount <= min) break;
      try {
        await this.destroyBlock(block, call.context);
      } catch (error) {
        if (destroyed.length === 0) throw error;
        throw new SliceGridHandlerError(
          'destroy',
          `${messageOf(error).replace(/; the grid is as it was$/, '')}; blocks ${destroyed.map((b) => `"${b.id}"`).join(', ')} were destroyed before it`,
          error,
        );
      }
      destroyed.push(blockInfo(block));
      call.undo.forget();
      call.stands = true;
    }
    return destroyed;
  }

  private async destroyBlock(block: BlockState, context: C | undefined): Promise<void> {
    const packer = this.host.packer();
    packer.removeBlock(block);
    try {
      await this.host.source.destroy(blockInfo(block), context);
    } catch (error) {
      packer.reinsert(block);
      throw new SliceGridHandlerError('destroy', `${this.host.names.destroy} failed for block "${block.id}": ${messageOf(error)}; the grid is as it was`, error);
    }
  }

  /** A slice leaves the grid: `removed`, then its id is free; undone by adding it back. */
  private async removeSlice(slice: SliceState, undo: UndoLog): Promise<void> {
    const packer = this.host.packer();
    const block = slice.block!;
    await this.unplaceAnnounced(slice);
    packer.unregister(slice);
    undo.push(async () => {
      packer.register(slice);
      try {
        await this.placeAnnounced(slice, block);
      } catch (error) {
        packer.unregister(slice);
        throw error;
      }
    });
  }

  /** Moves a placed slice, make before break: `added` on the target, then `removed` where it was. */
  private async relocate(slice: SliceState, target: BlockState, undo: UndoLog): Promise<void> {
    const from = slice.block!;
    this.shift(slice, target);
    try {
      await this.announce('added', slice, target);
    } catch (error) {
      this.shift(slice, from);
      throw error;
    }
    let stoppedThere = false;
    undo.push(async () => {
      this.shift(slice, from);
      if (stoppedThere) {
        try {
          await this.announce('added', slice, from);
        } catch (error) {
          this.shift(slice, target);
          throw error;
        }
      }
      await this.announce('removed', slice, target);
    });
    await this.announce('removed', slice, from);
    stoppedThere = true;
  }

  private shift(slice: SliceState, to: BlockState): void {
    const packer = this.host.packer();
    packer.unplace(slice);
    packer.place(slice, to);
  }

  private async placeAnnounced(slice: SliceState, block: BlockState): Promise<void> {
    const packer = this.host.packer();
    packer.place(slice, block);
    try {
      await this.announce('added', slice, block);
    } catch (error) {
      packer.unplace(slice);
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
    const packer = this.host.packer();
    const block = packer.unplace(slice);
    try {
      await this.announce('removed', slice, block);
    } catch (error) {
      packer.place(slice, block);
      throw error;
    }
  }

  /** `added` or `removed` for a slice and the block it is on (added) or just left (removed). */
  private announce(event: 'added' | 'removed', slice: SliceState, block: BlockState): Promise<void> {
    return this.host.events.announce(event, `slice "${slice.id}" on block "${block.id}"`, blockInfo(block), sliceInfo(slice, block.id));
  }

  private serialize(): string {
    return JSON.stringify(this.host.packer().toJSON());
  }
}

/** An empty list that stays empty. */
const NONE: never[] = Object.freeze([]) as never[];

/** Gives back the ids of a batch's slices that are not on a block. */
function unclaim(packer: Packer, slices: readonly SliceState[]): void {
  for (const s of slices) if (s.block === undefined) packer.unregister(s);
}

/** What a create asked for, in words: for its error only (not built for every block). */
function asked(planned: NewBlock, slice: SliceState | undefined, call: Call<unknown>): string {
  const tags = slice === undefined ? [] : slice.tags;
  return `a ${planned.size} MB block${tags.length > 0 ? ` tagged ${tags.join(',')}` : ''}${
    slice === undefined ? ` (the grid's min is ${call.limits.min})` : ` for slice "${slice.id}"`
  }`;
}

/** Whether the source gave the block the plan counted on: its size and tags. */
function asPlanned(block: { size: number; tags: readonly string[] }, planned: NewBlock): boolean {
  const tags = block.tags;
  if (block.size !== planned.size || tags.length !== planned.tags.length) return false;
  for (let i = 0; i < tags.length; i++) if (tags[i] !== planned.tags[i]) return false;
  return true;
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
