#!/usr/bin/env bash
# The agent's image (`docker run quarry/agent:latest agent --config URL`): launcher/agent/main.ts
# bundled by esbuild into one file, /quarry-agent.js, on quarry/node:20 (scripts/images.sh),
# with iptables (nft) and ipset for locknet: the files of this machine's Debian packages
# (setup installs them), about 3 MB, so that no network is needed to make it.
#   quarry/agent:<digest>   the digest of the bundle, the Dockerfile and the base image's id
#   quarry/agent:latest     moved to the newest one
# The bundle is made every time (under a second); the image only when its digest is new.
# Prints the digest tag.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'quarry setup: %s\n' "$*" >&2; }
DOCKER=/usr/bin/docker
BASE=quarry/node:20
REPO=quarry/agent

base_id=$($DOCKER image inspect -f '{{.Id}}' "$BASE" 2>/dev/null) \
  || { say "the base image $BASE is missing; run scripts/images.sh first"; exit 1; }
work=$(mktemp -d /tmp/quarry-agent-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

node --import tsx launcher/agent/bundle.ts "$work/quarry-agent.js" >/dev/null

# ZeroMQ's native addon for this node (the agent's peer relay talks to element control
# sockets): the bundle carries zeromq's code, which looks for build/manifest.json next to
# itself (/), so the manifest and this node's build go to /build.
# Every Linux x64 build: the loader picks the one this image's glibc (Debian's) can load.
mkdir -p "$work/zmq/build/linux"
cp node_modules/zeromq/build/manifest.json "$work/zmq/build/"
cp -a node_modules/zeromq/build/linux/x64 "$work/zmq/build/linux/"

# iptables and ipset with their libraries, from the packages installed here; the names point
# at the nft variant, as Debian's alternatives do.
mkdir -p "$work/netfilter/usr/sbin"
for package in iptables ipset libipset13 libip4tc2 libip6tc2 libxtables12 libmnl0 libnetfilter-conntrack3 libnfnetlink0 libnftnl11; do
  dpkg -L "$package" >/dev/null 2>&1 || { say "the Debian package $package is missing; run scripts/setup.sh (it installs iptables and ipset)"; exit 1; }
  dpkg -L "$package" | while read -r file; do
    case "$file" in /usr/share/*|/etc/*) continue ;; esac
    [ -f "$file" ] || [ -L "$file" ] || continue
    # /lib is a link to usr/lib (merged /usr): copy each file under its real folder.
    dir=$(readlink -f "$(dirname "$file")")
    mkdir -p "$work/netfilter$dir"
    cp -a "$file" "$work/netfilter$dir/"
  done
done
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf xtables-nft-multi "$work/netfilter/usr/sbin/$name"
done
# Only the packages' own files: the link targets above and the .so files are all there.
(cd "$work/netfilter" && find . -type f -o -type l | LC_ALL=C sort | xargs -d '\n' sha256sum 2>/dev/null | cut -c1-64) >"$work/netfilter.sum" || true
(cd "$work/zmq" && find . -type f | LC_ALL=C sort | xargs -d '\n' sha256sum | cut -c1-64) >>"$work/netfilter.sum"

cat >"$work/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY netfilter/ /
COPY zmq/ /
COPY quarry-agent.js /quarry-agent.js
ENTRYPOINT ["node", "/quarry-agent.js"]
CMD ["agent"]
DOCKERFILE
digest=$(cat "$work/quarry-agent.js" "$work/Dockerfile" "$work/netfilter.sum" <(printf '%s' "$base_id") | sha256sum | cut -c1-12)
tag="$REPO:$digest"

if ! $DOCKER image inspect "$tag" >/dev/null 2>&1; then
  say "making $tag (the agent, $(($(stat -c %s "$work/quarry-agent.js") / 1024)) KB bundled)"
  $DOCKER build -q -t "$tag" "$work" >/dev/null
fi
if [ "$($DOCKER image inspect -f '{{.Id}}' "$REPO:latest" 2>/dev/null || true)" != "$($DOCKER image inspect -f '{{.Id}}' "$tag")" ]; then
  $DOCKER tag "$tag" "$REPO:latest"
fi
echo "$tag"
