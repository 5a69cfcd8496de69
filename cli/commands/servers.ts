import { UsageError } from '../../errors/index.js';
import { type ServerRow } from '../../hq/index.js';
import { clientFor, parseHqArgs, printProgress, table } from '../client.js';
import type { Command } from '../command.js';

/**
 * `quarry servers`: the grid's servers (in small mode, this machine as `local`);
 * `servers add [SIZE]` and `servers remove ID` grow and shrink the grid, showing HQ's
 * progress as it streams (a server takes a while to boot and join).
 */
export const servers: Command = {
  summary: "the grid's servers: size, memory used and free, containers, state; add [SIZE], remove ID, drain ID [--remove], undrain ID",
  usage: 'quarry servers [--json] | quarry servers add [SIZE] | quarry servers remove ID | quarry servers drain ID [--remove] | quarry servers undrain ID  [--json] [--hq URL] [--token-file FILE]',
  async run(argv, io) {
    const { values, positionals } = parseHqArgs(argv, { json: { type: 'boolean' }, remove: { type: 'boolean' } });
    const [verb, ...rest] = positionals;
    const client = clientFor(values, io);
    const json = values.json === true;

    if (verb === undefined) {
      const rows = await client.servers();
      if (json) {
        io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return 0;
      }
      if (rows.length === 0) {
        io.stderr.write('no servers: add one with quarry servers add [SIZE]\n');
        return 0;
      }
      io.stdout.write(table(
        ['ID', 'PROVIDER', 'ADDRESS', 'SIZE', 'MEMORY', 'USED', 'FREE', 'CONTAINERS', 'STATE', 'AGENT', 'FIREWALL', 'ROUTER'],
        rows.map((r) => [r.id, r.provider, r.address || '-', r.size ?? '-', mb(r.memory), mb(r.used), mb(r.free), String(r.containers), r.state, r.agent ? 'yes' : 'no', r.firewall ?? '-', r.router ? 'yes' : 'no']),
      ));
      return 0;
    }

    if (verb === 'add') {
      if (rest.length > 1) throw new UsageError(`one size at most, not ${rest.length}`);
      const row = await client.addServer(rest[0], printProgress(io, json));
      io.stdout.write(json ? `${JSON.stringify(row, null, 2)}\n` : `server ${row.id} added: ${describe(row)}\n`);
      return 0;
    }

    if (verb === 'remove') {
      const [id, ...more] = rest;
      if (!id) throw new UsageError('name the server to remove (see quarry servers)');
      if (more.length > 0) throw new UsageError('one server at a time');
      const row = await client.removeServer(id, printProgress(io, json));
      io.stdout.write(json ? `${JSON.stringify(row, null, 2)}\n` : `server ${row.id} removed\n`);
      return 0;
    }

    if (verb === 'drain' || verb === 'undrain') {
      const [id, ...more] = rest;
      if (!id) throw new UsageError(`name the server to ${verb} (see quarry servers)`);
      if (more.length > 0) throw new UsageError('one server at a time');
      if (verb === 'undrain' && values.remove === true) throw new UsageError('--remove goes with drain');
      const remove = values.remove === true;
      const row = verb === 'drain'
        ? await client.drainServer(id, remove, printProgress(io, json))
        : await client.undrainServer(id, printProgress(io, json));
      io.stdout.write(json ? `${JSON.stringify(row, null, 2)}\n` : verb === 'undrain' ? `server ${row.id} takes containers again\n`
        : remove ? `server ${row.id} drained and removed\n` : `server ${row.id} drained: nothing runs there\n`);
      return 0;
    }

    if (values.remove === true) throw new UsageError('--remove goes with drain');
    throw new UsageError(`unknown servers command '${verb}': use add, remove, drain or undrain`);
  },
};

function mb(n: number): string {
  return `${n} MB`;
}

/** `10.0.0.3, digitalocean s-1vcpu-1gb, 1024 MB, active` */
function describe(row: ServerRow): string {
  return [row.address || '-', row.size === null ? row.provider : `${row.provider} ${row.size}`, mb(row.memory), row.state].join(', ');
}
