/**
 * Run by persistence.test.ts as a child process and killed (SIGKILL) at a random moment:
 * it grows a grid saved to the file given, batch after batch, forever.
 */
import { SliceGrid } from '../../slicegrid/index.js';

const file = process.argv[2]!;
const grid = new SliceGrid({ autosize: true, blockSize: 4096, file });
let made = 0;
grid.on('create', (request) => ({ id: `b${++made}`, size: request.size }));
process.stdout.write('ready\n');
for (let batch = 0; ; batch++) {
  await grid.addMany(Array.from({ length: 200 }, (_, i) => ({ id: `s.n${batch}.${i}`, size: 64 + ((batch * 7 + i) % 50) * 10 })));
}
