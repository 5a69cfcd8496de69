// The prefixed output of a run: whole lines only, one width for every prefix, colors only when asked.
import test from 'ava';
import { PassThrough } from 'node:stream';
import { PrefixedOutput } from '../../runner/index.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => { text += c.toString(); });
  return { stream, text: () => text };
}

test('chunks become whole prefixed lines, padded to the longest prefix; a partial line waits for its end', (t) => {
  const out = capture();
  const output = new PrefixedOutput(out.stream, false);
  output.reserve(['categorize.0']);
  const web = output.writer('web.0');
  web('listening');
  t.is(out.text(), '', 'a partial line is held');
  web(' on 8080\nsecond\npartial');
  web();
  t.is(out.text(), 'web.0        | listening on 8080\nweb.0        | second\nweb.0        | partial\n');
});

test('with color, each unit keeps one color and members share their unit\'s', (t) => {
  const out = capture();
  const output = new PrefixedOutput(out.stream, true);
  output.line('web.0', 'a', 'web');
  output.line('web.1', 'b', 'web');
  output.line('index.0', 'c', 'index');
  const codes = [...out.text().matchAll(/\x1b\[(\d+)m/g)].map((m) => m[1]).filter((c) => c !== '0');
  t.is(codes[0], codes[1]);
  t.not(codes[0], codes[2]);
});

test('a unit\'s escape sequences are shown escaped: it cannot drive the terminal; quarry\'s own colours stay', (t) => {
  const out = capture();
  const output = new PrefixedOutput(out.stream, true);
  output.writer('web.0')('\x1b[2J\x1b]0;owned\x07red \x1b[31mtext\n');
  t.is(out.text(), '\x1b[36mweb.0 |\x1b[0m \\x1b[2J\\x1b]0;owned\\x07red \\x1b[31mtext\n');
});
