#!/usr/bin/env bash
# npm run demo: quarry's main job on this machine. Set-up, HQ started in the background (its own
# etcd, its router on :8080, and a grid of servers from pacific's docker provider: containers
# with their own dockerd and sshd), the example stack pushed with the real git client over SSH,
# a wait until it serves, then the URLs, `quarry ps`, `quarry servers` and `quarry grid`.
#   bash scripts/demo.sh stop     stops the demo's HQ and removes its servers and containers
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$PWD
demo=${QUARRY_DEMO_DIR:-/tmp/quarry-demo}
export QUARRY_HOME="$demo/home"
quarry() { node "$repo_root/bin/quarry.js" "$@"; }

stop_demo() {
  if [ -f "$demo/hq.pid" ] && kill -0 "$(cat "$demo/hq.pid")" 2>/dev/null; then
    echo "stopping the demo's HQ (pid $(cat "$demo/hq.pid"))"
    kill "$(cat "$demo/hq.pid")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$demo/hq.pid")" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$demo/hq.pid"
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ids=$(docker ps -aq --filter label=quarry.stack=docsearch)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null
    docker network rm quarry-docsearch >/dev/null 2>&1 || true
    ids=$(docker ps -aq --filter label=quarry.pacific.fleet=demo)
    [ -z "$ids" ] || { echo "removing the demo's servers"; docker rm -f $ids >/dev/null; }
    vols=$(docker volume ls -q --filter name=quarry-server-demo-)
    [ -z "$vols" ] || docker volume rm -f $vols >/dev/null
    docker network rm quarry-pacific-demo >/dev/null 2>&1 || true
  fi
}

if [ "${1:-}" = stop ]; then stop_demo; exit 0; fi

bash scripts/setup.sh
npm run -s build
stop_demo
rm -rf "$demo" && mkdir -p "$demo"

echo
echo "== quarry hq   (in the background; its log: $demo/hq.log)"
cat >"$demo/hq.json" <<JSON
{ "home": "$QUARRY_HOME", "host": "127.0.0.1", "sshPort": 2222, "apiPort": 7070, "routerPort": 8080,
  "grid": { "provider": { "provider": "docker", "fleet": "demo" }, "min": 1, "max": 4, "size": "s-1vcpu-1gb" } }
JSON
nohup node "$repo_root/bin/quarry.js" hq --config "file://$demo/hq.json" >"$demo/hq.log" 2>&1 &
echo $! >"$demo/hq.pid"
for _ in $(seq 1 600); do [ -f "$QUARRY_HOME/hq.json" ] && break; kill -0 "$(cat "$demo/hq.pid")" || { cat "$demo/hq.log"; exit 1; }; sleep 0.2; done
[ -f "$QUARRY_HOME/hq.json" ] || { cat "$demo/hq.log"; echo "HQ did not start"; exit 1; }
sed 's/^/   /' "$demo/hq.log"

echo
echo "== quarry keys add   (a key of the demo's own, allowed to push)"
ssh-keygen -q -t ed25519 -N '' -C demo -f "$demo/id_demo"
quarry keys add "$demo/id_demo.pub"

echo
echo "== git push quarry main   (the example stack, stacks-example/docsearch, as a git repo)"
cp -r stacks-example/docsearch "$demo/docsearch"
cd "$demo/docsearch"
export GIT_SSH_COMMAND="ssh -i $demo/id_demo -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=$demo/known_hosts"
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@localhost GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@localhost
git init -q -b main && git add -A && git commit -q -m "docsearch"
git remote add quarry ssh://quarry@127.0.0.1:2222/docsearch
# The demo's key and known hosts in the repo's own config, so that the `git push quarry main`
# printed at the end works from the user's shell too; and an author, for `git commit` there.
git config core.sshCommand "$GIT_SSH_COMMAND"
git config user.name demo && git config user.email demo@localhost
git push quarry main
cd "$repo_root"

echo
# Searches docsearch at BASE (as its domain) until an answer names rivers.txt, at most TRIES
# times half a second apart; shows the command and the last answer; fails if none did.
search_until_served() {
  local base=$1 tries=$2 out=""
  for _ in $(seq 1 "$tries"); do
    out=$(curl -s --max-time 2 -H 'Host: docsearch.localhost' "$base/search?q=rivers" || true)
    case "$out" in *rivers.txt*) break ;; esac
    sleep 0.5
  done
  echo "\$ curl -H 'Host: docsearch.localhost' '$base/search?q=rivers'"
  echo "$out"
  case "$out" in *rivers.txt*) ;; *) return 1 ;; esac
}

echo "== waiting until http://docsearch.localhost:8080/ serves"
search_until_served http://127.0.0.1:8080 120 || { echo "the stack did not answer a search; see $demo/hq.log"; exit 1; }

# The same search through the grid's router host (its port 80): web traffic that never passes through HQ.
router_host=$(quarry servers --json | node -e 'let t="";process.stdin.on("data",(c)=>t+=c).on("end",()=>{const r=JSON.parse(t).find((s)=>s.router);process.stdout.write(r?r.address:"")})')
if [ -n "$router_host" ]; then
  echo
  echo "== the same through the grid's router host, $router_host port 80 (HQ is not in this path)"
  search_until_served "http://$router_host" 60 || echo "(the router host did not answer yet; see $demo/hq.log)"
fi

echo
echo "== quarry ps docsearch"
quarry ps docsearch

echo
echo "== quarry servers   (the grid: servers made by pacific's docker provider)"
quarry servers

echo
echo "== quarry grid docsearch"
quarry grid docsearch

cat <<TEXT

docsearch runs. Try:
  curl http://docsearch.localhost:8080/search?q=danube      (*.localhost is loopback in curl and browsers)
  curl -H 'Host: docsearch.localhost' http://${router_host:-ROUTER-HOST}/search?q=danube    (the grid's router host: point DNS there)
  export QUARRY_HOME=$QUARRY_HOME
  node bin/quarry.js scale docsearch web=8 ; node bin/quarry.js servers     (the grid grows a server)
  node bin/quarry.js scale docsearch web=2 ; node bin/quarry.js grid        (and shrinks again)
  node bin/quarry.js logs docsearch web ; node bin/quarry.js releases docsearch
  node bin/quarry.js top docsearch                           (the dataflow live: rates, queues, busy)
  open http://127.0.0.1:7070/ui/ in a browser: the dashboard; log in with the token in $QUARRY_HOME/token
  cd $demo/docsearch && edit web/server.js && git commit -am change && git push quarry main
Stop it all with:  bash scripts/demo.sh stop
TEXT
