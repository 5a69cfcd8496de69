import Docker from 'dockerode';

/** The local docker engine, as the tests reach it. */
export const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });

/** Label every test container so that a crashed run's leftovers can be found and removed. */
export const TEST_LABEL = 'quarry.test';

export async function removeContainer(id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}
