import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs a command, failing with what it printed. */
export async function sh(file: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await run(file, args, { maxBuffer: 32 * 1024 * 1024 });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(file, args);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.join(' ')}: exit ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

/**
 * A small network of namespaces made by a test: a switch (a bridge in a namespace of its own)
 * and hosts, each a namespace with one veth on the switch and an address in a private /24 of
 * its own. `close()` removes them all (and the processes started in them).
 */
export class Lan {
  readonly subnet: string;
  private readonly hosts = new Map<string, string>();
  private readonly children: ChildProcess[] = [];

  private constructor(readonly tag: string, private readonly switchNs: string) {
    const b = randomBytes(1)[0]! % 200 + 20;
    this.subnet = `10.${200 + (process.pid % 50)}.${b}`;
  }

  static async make(prefix: string): Promise<Lan> {
    if (process.getuid?.() !== 0) throw new Error('network namespaces need root: run the tests as root (CI does)');
    const tag = `${prefix}${randomBytes(2).toString('hex')}`;
    const lan = new Lan(tag, `${tag}-sw`);
    await sh('ip', ['netns', 'add', lan.switchNs]);
    await sh('ip', ['-n', lan.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh('ip', ['-n', lan.switchNs, 'link', 'set', 'br0', 'up']);
    return lan;
  }

  /** A host on the switch: its namespace's name, with loopback up and address `<subnet>.<n>`. */
  async host(name: string, n: number): Promise<{ ns: string; ip: string }> {
    const ns = `${this.tag}-${name}`;
    const ip = `${this.subnet}.${n}`;
    const port = `${this.tag.slice(-4)}${name.slice(0, 6)}`.slice(0, 14);
    await sh('ip', ['netns', 'add', ns]);
    await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await sh('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', this.switchNs]);
    await sh('ip', ['-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
    await sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    this.hosts.set(name, ns);
    return { ns, ip };
  }

  /** Runs a command in a host's namespace. */
  exec(ns: string, file: string, args: string[], input?: string): Promise<string> {
    return sh('ip', ['netns', 'exec', ns, file, ...args], input);
  }

  /** Starts a long-running process in a namespace, ended by `close()`. */
  spawn(ns: string, file: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    this.children.push(child);
    return child;
  }

  /** A TCP listener in a namespace that accepts and holds connections, on `port`. */
  async listen(ns: string, port: number): Promise<void> {
    const child = this.spawn(ns, process.execPath, ['-e', `require('node:net').createServer((s) => s.on('error', () => {})).listen(${port}, '0.0.0.0', () => console.log('up'))`]);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`listener on ${port} in ${ns} exited ${code}`)));
    });
  }

  /** What a TCP connection from a namespace to host:port found: open, refused or dropped (no answer in 1 s). */
  async reach(ns: string, host: string, port: number): Promise<'open' | 'refused' | 'dropped'> {
    const out = await this.exec(ns, process.execPath, ['-e', `
const s = require('node:net').connect({ host: ${JSON.stringify(host)}, port: ${port} });
const done = (w) => { console.log(w); s.destroy(); process.exit(0); };
setTimeout(() => done('dropped'), 1000);
s.once('connect', () => done('open'));
s.once('error', (e) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'dropped'));`]);
    return out.trim() as 'open' | 'refused' | 'dropped';
  }

  async close(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    for (const ns of [...this.hosts.values(), this.switchNs]) await sh('ip', ['netns', 'del', ns]).catch(() => '');
  }
}
