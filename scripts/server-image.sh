#!/usr/bin/env bash
# The image of a `docker`-provider server (pacific): Debian with its own docker engine, sshd
# and iptables, so that a container can stand in for a machine of the grid. Made once and
# cached by tag (there is no registry to pull from):
#   quarry/server:bookworm
# The host keys debootstrap makes are removed: every server makes its own when it boots, so
# that no two servers share a host key.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'quarry setup: %s\n' "$*" >&2; }
DOCKER=/usr/bin/docker
TAG=quarry/server:bookworm

$DOCKER image inspect "$TAG" >/dev/null 2>&1 && exit 0

work=$(mktemp -d /tmp/quarry-server-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
say "making $TAG with debootstrap (about a minute, once)"
debootstrap --variant=minbase \
  --include=docker.io,openssh-server,iptables,iproute2,ca-certificates,procps \
  bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
rm -f "$work/rootfs/etc/ssh/ssh_host_"*
mkdir -p "$work/rootfs/root/.ssh"
chmod 700 "$work/rootfs/root/.ssh"
tar -C "$work/rootfs" -c . | $DOCKER import - "$TAG" >/dev/null
say "made $TAG"
