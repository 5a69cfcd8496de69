#!/usr/bin/env bash
# The one set-up that `npm test`, `npm run demo` and .ci/run all use. Idempotent and quick
# when everything is already there: installs the Debian packages quarry needs, starts
# dockerd, installs the node modules, builds the dashboard's files, and makes the local base
# images (there is no registry).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'quarry setup: %s\n' "$*" >&2; }
DOCKER=/usr/bin/docker

# --- Debian packages -----------------------------------------------------------------
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ipset >/dev/null 2>&1 || need+=(ipset)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v git >/dev/null 2>&1 || need+=(git)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
# The ACME test server (and its DNS test server), for the router's ACME tests.
command -v pebble >/dev/null 2>&1 || need+=(pebble)
# The dashboard's tests drive Debian's browser (playwright-core, no browser download).
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${need[*]}; install them as root (apt-get install ${need[*]}) and run again"
    exit 1
  fi
  say "installing ${need[*]} with apt-get (a few minutes, once)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- docker engine ---------------------------------------------------------------------
if ! $DOCKER info >/dev/null 2>&1; then
  if ! pgrep -x dockerd >/dev/null; then
    say "starting dockerd (log: /var/log/quarry-dockerd.log)"
    (setsid dockerd >/var/log/quarry-dockerd.log 2>&1 &)
  fi
  for _ in $(seq 1 120); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.5; done
  if ! $DOCKER info >/dev/null 2>&1; then
    say "dockerd did not answer within 60 s; see /var/log/quarry-dockerd.log"
    tail -n 20 /var/log/quarry-dockerd.log >&2 || true
    exit 1
  fi
fi

# --- node modules ----------------------------------------------------------------------
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund >/dev/null
fi

# --- the dashboard's files (dist/ui/), when missing or older than their sources ---------
if [ ! -f dist/ui/index.html ] || [ -n "$(find ui -newer dist/ui/index.html -type f -print -quit)" ]; then
  say "building the dashboard (dist/ui/)"
  node --import tsx ui/build.ts
fi

# --- base images -----------------------------------------------------------------------
bash scripts/images.sh
bash scripts/server-image.sh
