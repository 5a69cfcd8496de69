import { PushRefusedError } from '../errors.js';

/** One line git gives a pre-receive hook: a ref moving from one commit to another. */
export interface RefUpdate {
  oldSha: string;
  newSha: string;
  ref: string;
}


/** The branches a push deploys from, as on Heroku. */
export const DEPLOY_BRANCHES = ['refs/heads/main', 'refs/heads/master'];

const ZERO = /^0+$/;

/**
 * The one ref update of a push that is deployed. quarry deploys `main` (or `master`), like
 * Heroku: a push of any other branch or of a tag is refused with the command that deploys
 * it, and so are deleting the deployed branch and pushing main and master at once.
 */
export function deployedUpdate(updates: RefUpdate[]): RefUpdate {
  const others = updates.filter((u) => !DEPLOY_BRANCHES.includes(u.ref));
  if (others.length > 0) {
    const names = others.map((u) => u.ref.replace(/^refs\/heads\//, '')).join(', ');
    throw new PushRefusedError(
      `quarry deploys only the main (or master) branch, not ${names}.\n` +
      `To deploy another branch, push it to main: git push quarry ${others[0]!.ref.replace(/^refs\/(heads|tags)\//, '')}:main`);
  }
  if (updates.length === 0) throw new PushRefusedError('nothing to deploy: the push moves no branch');
  if (updates.length > 1) throw new PushRefusedError('push main or master, not both at once: they would be two different deploys');
  const update = updates[0]!;
  if (ZERO.test(update.newSha)) throw new PushRefusedError(`deleting ${update.ref.replace(/^refs\/heads\//, '')} is not allowed: it holds the stack's deployed code`);
  return update;
}
