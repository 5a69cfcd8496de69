import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { QuarryError, UsageError } from '../../errors/index.js';
import { addAuthorizedKey } from '../../hq/index.js';
import { HomeLayout, quarryHome } from '../../home/index.js';
import type { Command } from '../command.js';

/**
 * `quarry keys add FILE`. For now it writes HQ's `keys/authorized_keys` under the local
 * QUARRY_HOME directly (HQ reads the file on every login, so no restart is needed); once
 * HQ's HTTP API exists, it goes through the API instead.
 */
export const keys: Command = {
  summary: 'authorise a public key to push (keys add FILE)',
  usage: 'quarry keys add FILE',
  async run(argv, io) {
    const [verb, file, ...rest] = argv;
    if (verb !== 'add') throw new UsageError(verb ? `unknown keys command '${verb}'` : 'say what to do: add');
    if (!file) throw new UsageError('name the public key file to add, e.g. ~/.ssh/id_ed25519.pub');
    if (rest.length > 0) throw new UsageError(`one key file at a time, not ${rest.length + 1}`);
    let text: string;
    try {
      text = readFileSync(resolve(io.cwd, file), 'utf8');
    } catch (err) {
      throw new QuarryError(`${file}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const home = new HomeLayout(quarryHome(io.env));
    const result = addAuthorizedKey(home, text, file);
    const who = result.comment ? ` (${result.comment})` : '';
    io.stdout.write(result.added
      ? `added key ${result.fingerprint}${who}: it may push now\n`
      : `key ${result.fingerprint}${who} is already authorised; nothing changed\n`);
    return 0;
  },
};
