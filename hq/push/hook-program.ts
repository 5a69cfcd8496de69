/**
 * The program a stack's pre-receive hook runs (CommonJS, no dependencies, so that any
 * `node` runs it as it is). It does not decide anything: it hands git's ref updates and
 * quarantine settings to HQ over HQ's hook socket, relays HQ's progress to its own stdout
 * and stderr (which git shows the pusher as `remote: …` lines), and exits with HQ's verdict.
 * HQ knows which push this is by the one-time token it put into receive-pack's environment.
 */
export const HOOK_PROGRAM = `'use strict';
// quarry pre-receive hook: written by quarry HQ; changes are overwritten.
const net = require('node:net');
const socketPath = process.env.QUARRY_HOOK_SOCKET;
const token = process.env.QUARRY_PUSH_TOKEN;
if (!socketPath || !token) {
  process.stderr.write('quarry: this repository takes pushes only through quarry HQ\\n');
  process.exit(1);
}
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const updates = input.split('\\n').filter((l) => l.trim()).map((line) => {
    const [oldSha, newSha, ref] = line.split(' ');
    return { oldSha, newSha, ref };
  });
  const git = {};
  for (const name of ['GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_QUARANTINE_PATH', 'GIT_PUSH_OPTION_COUNT']) {
    if (process.env[name]) git[name] = process.env[name];
  }
  for (let i = 0; i < Number(process.env.GIT_PUSH_OPTION_COUNT || 0) && i < 64; i++) {
    git['GIT_PUSH_OPTION_' + i] = process.env['GIT_PUSH_OPTION_' + i] || '';
  }
  let verdict = null;
  let buffer = '';
  const socket = net.connect(socketPath);
  socket.setEncoding('utf8');
  socket.on('connect', () => socket.write(JSON.stringify({ token, updates, git }) + '\\n'));
  socket.on('data', (chunk) => {
    buffer += chunk;
    let at;
    while ((at = buffer.indexOf('\\n')) >= 0) {
      const message = JSON.parse(buffer.slice(0, at));
      buffer = buffer.slice(at + 1);
      if (message.out !== undefined) process.stdout.write(message.out);
      if (message.err !== undefined) process.stderr.write(message.err);
      if (message.exit !== undefined) verdict = message.exit;
    }
  });
  socket.on('error', (err) => {
    process.stderr.write('quarry: cannot reach HQ (' + err.message + '); push rejected\\n');
  });
  socket.on('close', () => {
    if (verdict === null) process.stderr.write('quarry: HQ went away before it decided; push rejected\\n');
    process.exitCode = verdict === null ? 1 : verdict;
  });
});
`;

/** The repository's `hooks/pre-receive`: runs the program above with HQ's own node. */
export function hookScript(node: string, program: string): string {
  return `#!/bin/sh\n# quarry pre-receive hook: written by quarry HQ; changes are overwritten.\nexec ${shellQuote(node)} ${shellQuote(program)}\n`;
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
