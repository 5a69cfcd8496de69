/** One entry of a tar archive: a folder (no content) or a regular file. */
export interface TarEntry {
  /** The path inside the archive, relative (`etc/quarry/agent.json`); folders may end in `/`. */
  path: string;
  /** A file's content; absent: a folder. */
  content?: Buffer | string;
  /** Permission bits; default 0o755 for folders, 0o644 for files. */
  mode?: number;
}

const BLOCK = 512;

function field(header: Buffer, offset: number, length: number, text: string): void {
  header.write(text, offset, length, 'utf8');
}

function octal(header: Buffer, offset: number, length: number, value: number): void {
  field(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/**
 * A ustar archive of a few small entries, in memory: what docker's `putArchive` takes to put
 * files into a container. Owned by root, dated `mtime` (default now).
 */
export function tarOf(entries: TarEntry[], mtime: Date = new Date()): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const folder = entry.content === undefined;
    const name = folder && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
    if (name.startsWith('/') || Buffer.byteLength(name) > 100) {
      throw new Error(`tar: "${entry.path}" must be a relative path of at most 100 bytes`);
    }
    const content = folder ? Buffer.alloc(0) : Buffer.from(entry.content!);
    const header = Buffer.alloc(BLOCK, 0);
    field(header, 0, 100, name);
    octal(header, 100, 8, entry.mode ?? (folder ? 0o755 : 0o644));
    octal(header, 108, 8, 0);
    octal(header, 116, 8, 0);
    octal(header, 124, 12, content.length);
    octal(header, 136, 12, Math.floor(mtime.getTime() / 1000));
    header.fill(' ', 148, 156);
    field(header, 156, 1, folder ? '5' : '0');
    field(header, 257, 6, 'ustar\0');
    field(header, 263, 2, '00');
    field(header, 265, 32, 'root');
    field(header, 297, 32, 'root');
    let sum = 0;
    for (const byte of header) sum += byte;
    field(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(header);
    if (content.length > 0) {
      blocks.push(content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK, 0));
    }
  }
  blocks.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(blocks);
}
