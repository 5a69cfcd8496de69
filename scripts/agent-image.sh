#!/usr/bin/env bash
# The agent's image (`docker run quarry/agent:latest agent --config URL`): launcher/agent/main.ts
# bundled by esbuild into one file, /quarry-agent.js, on quarry/node:20 (scripts/images.sh).
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
cat >"$work/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY quarry-agent.js /quarry-agent.js
ENTRYPOINT ["node", "/quarry-agent.js"]
CMD ["agent"]
DOCKERFILE
digest=$(cat "$work/quarry-agent.js" "$work/Dockerfile" <(printf '%s' "$base_id") | sha256sum | cut -c1-12)
tag="$REPO:$digest"

if ! $DOCKER image inspect "$tag" >/dev/null 2>&1; then
  say "making $tag (the agent, $(($(stat -c %s "$work/quarry-agent.js") / 1024)) KB bundled)"
  $DOCKER build -q -t "$tag" "$work" >/dev/null
fi
if [ "$($DOCKER image inspect -f '{{.Id}}' "$REPO:latest" 2>/dev/null || true)" != "$($DOCKER image inspect -f '{{.Id}}' "$tag")" ]; then
  $DOCKER tag "$tag" "$REPO:latest"
fi
echo "$tag"
