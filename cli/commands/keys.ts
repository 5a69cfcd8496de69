import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { QuarryError, UsageError } from '../../errors/index.js';
import { addAuthorizedKey } from '../../hq/index.js';
import { HomeLayout, quarryHome } from '../../home/index.js';
import { HqClient, namedHq, parseHqArgs } from '../client.js';
import type { Command } from '../command.js';

/**
 * `quarry keys add FILE`: authorises a public key to push. Whenever an HQ is named (`--hq`,
 * `QUARRY_HQ`) or runs with the local home (`$QUARRY_HOME/hq.json`), through HQ's API
 * (`POST /v1/keys`, with the token like every command), so the key lands in that HQ's home
 * wherever it is. Only when no HQ is named or found does it write `keys/authorized_keys`
 * under the local QUARRY_HOME itself, and says so (HQ reads the file on every login, so an
 * HQ started later on that home takes it without a restart).
 */
export const keys: Command = {
  summary: "authorise a public key to push, through HQ's API (keys add FILE)",
  usage: 'quarry keys add FILE [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, {});
    const [verb, file, ...rest] = positionals;
    if (verb !== 'add') throw new UsageError(verb ? `unknown keys command '${verb}'` : 'say what to do: add');
    if (!file) throw new UsageError('name the public key file to add, e.g. ~/.ssh/id_ed25519.pub');
    if (rest.length > 0) throw new UsageError(`one key file at a time, not ${rest.length + 1}`);
    let text: string;
    try {
      text = readFileSync(resolve(io.cwd, file), 'utf8');
    } catch (err) {
      throw new QuarryError(`${file}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // A private key never leaves this machine, not even to be refused by HQ.
    if (/PRIVATE KEY-----|^PuTTY-User-Key-File-/m.test(text)) {
      throw new QuarryError(`${file}: this is a private key; give its public half (the .pub file beside it). Keep the private key secret`);
    }

    const target = namedHq(values, io);
    if (target) {
      const result = await new HqClient(target).addKey(text, file);
      const who = result.comment ? ` (${result.comment})` : '';
      io.stdout.write(result.added
        ? `added key ${result.fingerprint}${who} to HQ at ${target.url}: it may push now\n`
        : `key ${result.fingerprint}${who} is already authorised by HQ at ${target.url}; nothing changed\n`);
      return 0;
    }

    const home = new HomeLayout(quarryHome(io.env));
    const result = addAuthorizedKey(home, text, file);
    const who = result.comment ? ` (${result.comment})` : '';
    io.stdout.write(result.added
      ? `added key ${result.fingerprint}${who}: it may push now\n`
      : `key ${result.fingerprint}${who} is already authorised; nothing changed\n`);
    io.stderr.write(`no HQ named by --hq or QUARRY_HQ, and none runs with home ${home.root}: this used ${home.authorizedKeys} directly, ` +
      `for an HQ on this home; for another HQ, name it with --hq URL or QUARRY_HQ\n`);
    return 0;
  },
};
