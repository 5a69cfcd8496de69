import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** git's env for a benchmark's pushes: its own key (no agent, no known hosts) and an author. */
export function benchGitEnv(keyFile: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_SSH_COMMAND: `ssh -i ${keyFile} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o BatchMode=yes -o LogLevel=ERROR`,
    GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@localhost', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@localhost',
  };
}

/**
 * A copy of the example stack (stacks-example/docsearch) at `repo`, named by the folder it is
 * pushed to (no `name:`), answering on `domain`; `edit` changes its quarry.yml further.
 */
export function exampleCopy(repo: string, domain: string, edit: (yml: string) => string = (yml) => yml): string {
  cpSync(join(ROOT, 'stacks-example', 'docsearch'), repo, { recursive: true });
  const yml = join(repo, 'quarry.yml');
  writeFileSync(yml, edit(readFileSync(yml, 'utf8').replace(/^name:.*\n/m, '').replace('docsearch.localhost', domain)));
  return repo;
}
