import { sortedSlices, type BlockState } from './packer.js';
import { stackOf } from './slice-id.js';

export interface DrawOptions {
  /** Rows for the largest block (default 8). */
  height?: number;
  /** Columns of text to fill before wrapping to a new row of blocks (default 100). */
  width?: number;
  /** Mark this stack's slices `#` and the others' `=`, and list only its slices. */
  stack?: string;
}

/**
 * The grid as text, for `quarry grid`: each block a column as tall as its size, filled from
 * the bottom as far as it is used, its id and use below, then one line per block with its
 * slices. Like the original design's sketch:
 *
 *             +----+
 *   +----+    |    |
 *   |    |    |####|
 *   |####|    |####|
 *   +----+    +----+
 *   b1        b2
 *   50%       75%
 */
export function drawGrid(blocks: readonly BlockState[], options: DrawOptions = {}): string {
  if (blocks.length === 0) return '(no blocks)\n';
  const height = Math.max(1, Math.floor(options.height ?? 8));
  const width = Math.max(20, Math.floor(options.width ?? 100));
  const largest = Math.max(...blocks.map((b) => b.size));
  const columns = blocks.map((block) => column(block, largest, height, options.stack));

  const out: string[] = [];
  for (let start = 0; start < columns.length; ) {
    let used = 0;
    let end = start;
    while (end < columns.length && (end === start || used + columns[end]!.width <= width)) {
      used += columns[end]!.width;
      end++;
    }
    const row = columns.slice(start, end);
    const lines = Math.max(...row.map((c) => c.lines.length));
    // Bottom-aligned, so blocks stand on one line like the sketch.
    const padded = row.map((c) => [...new Array<string>(lines - c.lines.length).fill(''), ...c.lines]);
    for (let i = 0; i < lines; i++) {
      out.push(
        row
          .map((c, k) => padded[k]![i]!.padEnd(c.width))
          .join('')
          .trimEnd(),
      );
    }
    out.push('');
    start = end;
  }

  const idWidth = Math.max(...blocks.map((b) => b.id.length));
  for (const block of blocks) {
    const tags = block.tags.length > 0 ? `  tags ${block.tags.join(',')}` : '';
    out.push(`${block.id.padEnd(idWidth)}  ${block.size} MB  used ${block.used}  free ${block.free}${tags}`);
    const listed = sortedSlices(block).filter((s) => options.stack === undefined || stackOf(s.id) === options.stack);
    if (listed.length > 0) out.push(`${' '.repeat(idWidth)}  ${listed.map((s) => `${s.id} ${s.size}`).join(', ')}`);
  }
  return out.join('\n') + '\n';
}

function column(block: BlockState, largest: number, height: number, stack: string | undefined): { lines: string[]; width: number } {
  const rows = Math.max(1, Math.round((block.size / largest) * height));
  const marked = stack === undefined ? block.used : sum(block, (id) => stackOf(id) === stack);
  const filled = fill(block.used, block.size, rows);
  const markedRows = stack === undefined ? filled : Math.min(filled, fill(marked, block.size, rows));
  const lines = ['+----+'];
  for (let r = 0; r < rows; r++) {
    const fromBottom = rows - r;
    if (fromBottom > filled) lines.push('|    |');
    else if (fromBottom > markedRows) lines.push('|====|');
    else lines.push('|####|');
  }
  lines.push('+----+', block.id, `${Math.round((block.used / block.size) * 100)}%`);
  return { lines, width: Math.max(6, block.id.length) + 3 };
}

/** Rows to fill for `used` of `size`: any use shows, and only a full block looks full. */
function fill(used: number, size: number, rows: number): number {
  if (used <= 0) return 0;
  const n = Math.round((used / size) * rows);
  if (used >= size) return rows;
  return Math.min(Math.max(n, 1), rows > 1 ? rows - 1 : rows);
}

function sum(block: BlockState, include: (id: string) => boolean): number {
  let n = 0;
  for (const slice of block.slices) if (include(slice.id)) n += slice.size;
  return n;
}
