import { runRouterCommand } from '../../router/index.js';
import type { Command } from '../command.js';

export const router: Command = {
  summary: 'the HTTP router: web requests by domain to the healthy containers, routes from etcd',
  usage: 'quarry router [--config URL]',
  // The same as the agent image's `router --config URL` (a grid's router hosts): router/command.ts.
  run: (argv, io) => runRouterCommand(argv, io),
};
