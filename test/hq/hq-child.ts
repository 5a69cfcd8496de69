// HQ's push path and the part that runs stacks, in a process of its own, so that a test can
// kill it with SIGKILL mid-task and start it again. Prints `ready <sshPort>` once listening.
import Docker from 'dockerode';
import { Etcd3 } from 'etcd3';
import { startControl, startHq, type ControlHandle } from '../../hq/index.js';

const home = process.env.HQ_HOME!;
const etcd = new Etcd3({ hosts: process.env.HQ_ETCD! });
let control: ControlHandle | undefined;
const hq = await startHq({
  home, sshPort: Number(process.env.HQ_SSH_PORT ?? 0), host: '127.0.0.1', log: () => {},
  onRelease: (...args) => control!.onRelease(...args),
});
control = await startControl({
  home: new (await import('../../home/index.js')).HomeLayout(home), etcd, docker: new Docker(),
  log: (line) => process.stderr.write(`hq: ${line}\n`), drainMs: 300,
});
process.stdout.write(`ready ${hq.sshPort}\n`);
process.on('SIGTERM', () => void hq.close().then(() => control!.close()).then(() => etcd.close()).then(() => process.exit(0)));
