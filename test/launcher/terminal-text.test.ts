// What containers and builds wrote reaches a terminal shown, never obeyed: a table of text in,
// text out, and the push's progress lines made safe on their way to `remote:`.
import test from 'ava';
import { progressTo, terminalSafe } from '../../launcher/index.js';

const cases: Array<[string, string, string]> = [
  ['plain text is left alone', 'GET /healthz 200 in 3 ms', 'GET /healthz 200 in 3 ms'],
  ['tabs and newlines are kept', 'a\tb\nc', 'a\tb\nc'],
  ['text beyond ASCII is kept', 'déjà vu, 東京, ✓', 'déjà vu, 東京, ✓'],
  ['a colour (CSI SGR) is shown escaped', '\x1b[31mred\x1b[0m', '\\x1b[31mred\\x1b[0m'],
  ['clearing the screen and moving the cursor', '\x1b[2J\x1b[H\x1b[1A', '\\x1b[2J\\x1b[H\\x1b[1A'],
  ['a window title (OSC, ended by BEL)', '\x1b]0;pwned\x07', '\\x1b]0;pwned\\x07'],
  ['a clipboard write (OSC 52, ended by ST)', '\x1b]52;c;ZWNobyBoaQ==\x1b\\', '\\x1b]52;c;ZWNobyBoaQ==\\x1b\\'],
  ['a lone carriage return, which would overwrite the line', 'ok\rFAKE', 'ok\\x0dFAKE'],
  ['a CRLF line end is a line end', 'one\r\ntwo\r\n', 'one\ntwo\n'],
  ['backspace, NUL, vertical tab, form feed', '\b\x00\v\f', '\\x08\\x00\\x0b\\x0c'],
  ['DEL', 'a\x7fb', 'a\\x7fb'],
  ['the C1 controls: CSI, OSC and NEL as single characters', '\u009b31m\u009d0;t\u0085', '\\x9b31m\\x9d0;t\\x85'],
  ['the last C0 and the first character after the C1 block', '\x1f\u00a0', '\\x1f\u00a0'],
];

for (const [name, input, shown] of cases) {
  test(`terminalSafe: ${name}`, (t) => {
    t.is(terminalSafe(input), shown);
  });
}

test('a push\'s progress lines (remote: …) are made safe, whether step, info or error', (t) => {
  const out: string[] = [];
  const err: string[] = [];
  const progress = progressTo((text) => out.push(text), (text) => err.push(text));
  progress.step('Building \x1b[1mweb\x1b[0m');
  progress.info('Step 1/2 : RUN printf "\\033[2J"\n\x1b[2Jcleared?');
  progress.error('failed: \x1b]0;title\x07');
  t.deepEqual(out, [
    '-----> Building \\x1b[1mweb\\x1b[0m\n',
    '       Step 1/2 : RUN printf "\\033[2J"\n       \\x1b[2Jcleared?\n',
  ]);
  t.deepEqual(err, ['failed: \\x1b]0;title\\x07\n']);
});
