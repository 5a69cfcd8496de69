#!/usr/bin/env bash
# Local base images, made once and cached by tag (there is no registry to pull from):
#   quarry/debian:bookworm  a minimal Debian root file system (debootstrap)
#   quarry/node:20          that, plus this machine's node and npm
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'quarry setup: %s\n' "$*" >&2; }
DOCKER=/usr/bin/docker
has() { $DOCKER image inspect "$1" >/dev/null 2>&1; }
work=$(mktemp -d /tmp/quarry-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

if ! has quarry/debian:bookworm; then
  say "making quarry/debian:bookworm with debootstrap (about a minute, once)"
  debootstrap --variant=minbase --include=libstdc++6,ca-certificates bookworm "$work/rootfs" \
    http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -c . | $DOCKER import - quarry/debian:bookworm >/dev/null
  rm -rf "$work/rootfs"
fi

if ! has quarry/node:20; then
  say "making quarry/node:20 from this machine's node $(node --version)"
  mkdir -p "$work/node/usr/bin" "$work/node/usr/lib/node_modules"
  cp "$(readlink -f "$(command -v node)")" "$work/node/usr/bin/node"
  npm_root=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  cp -a "$npm_root" "$work/node/usr/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/node/usr/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/node/usr/bin/npx"
  cat >"$work/node/Dockerfile" <<'DOCKERFILE'
FROM quarry/debian:bookworm
COPY usr/ /usr/
ENV NODE_ENV=production
WORKDIR /app
CMD ["node"]
DOCKERFILE
  $DOCKER build -q -t quarry/node:20 "$work/node" >/dev/null
fi
bash scripts/agent-image.sh >/dev/null  # quarry/agent:latest, the per-server agent (one bundled file)

# quarry/runtime: the element runtime on quarry/node:20 (tagged by a digest of the runtime's
# sources, and :latest). Element class images stand on it; Dockerfiles of nodes with topology
# ports start `FROM quarry/runtime`. Remade only when the runtime changes.
node --import tsx --input-type=module -e '
  const { default: Docker } = await import("dockerode");
  const { ensureRuntimeImage } = await import("./launcher/index.ts");
  await ensureRuntimeImage(new Docker(), (line) => { if (line.startsWith("making")) process.stderr.write(`quarry setup: ${line}\n`); });
'
