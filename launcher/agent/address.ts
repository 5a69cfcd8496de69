import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

/** Interfaces docker makes for its containers: never the address a server is known by. */
const CONTAINER_INTERFACES = /^(docker\d*|br-[0-9a-f]+|veth.*|cni\d*|flannel.*|virbr\d*)$/;

/**
 * The address a server is known by when its settings name none: the first IPv4 address of an
 * interface that is neither loopback nor one of docker's bridges (the agent runs on the host
 * network, so it sees the machine's own interfaces); the host name when there is none.
 */
export function pickAddress(
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>,
  fallback: string,
): string {
  for (const [name, addresses] of Object.entries(interfaces)) {
    if (CONTAINER_INTERFACES.test(name)) continue;
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return fallback;
}

/** This machine's address, as `pickAddress` finds it. */
export function machineAddress(): string {
  return pickAddress(networkInterfaces(), hostname());
}
