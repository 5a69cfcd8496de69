#!/usr/bin/env bash
# npm run demo: set-up, then what quarry can show today. For now that is the compiler: the
# example stack compiled into its launch plan, a change to one node giving one DEPLOY, and
# a broken stack refused with every fault at its place. (The push path replaces this with
# a real `git push` to a local HQ once it lands; see the README.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run -s build
quarry() { node bin/quarry.js "$@"; }
example=stacks-example/docsearch
work=$(mktemp -d /tmp/quarry-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo
echo "== quarry build $example   (the plan of a first push, against an empty grid)"
quarry build "$example" --write-state "$work/running.json"

echo
echo "== the same stack, built against what that plan would leave running"
quarry build "$example" --current "$work/running.json"

echo
echo "== one line changed in the web node's code: one DEPLOY"
cp -r "$example" "$work/docsearch"
echo "// a one-line change" >>"$work/docsearch/web/server.js"
quarry build "$work/docsearch" --current "$work/running.json"

echo
echo "== a broken quarry.yml and topology: every fault at its place, exit 1, nothing changed"
sed -i 's/port: 8080/port: http/; s/domains:/domain:/' "$work/docsearch/quarry.yml"
sed -i 's/index.query/index.qeury/' "$work/docsearch/topology.yml"
(cd "$work" && node "$OLDPWD/bin/quarry.js" build docsearch) && exit 1 || echo "(exit $?)"
