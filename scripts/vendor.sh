#!/bin/sh
# Copy the browser libraries the live page uses from node_modules into ticker/static/vendor/.
# The copied files are committed, so the app never needs npm (or a CDN) at run time.
# Run after changing package.json:  npm ci && sh scripts/vendor.sh
set -eu
cd "$(dirname "$0")/.."
src=node_modules/uplot
dst=ticker/static/vendor/uplot
[ -d "$src" ] || { echo "vendor.sh: $src missing; run 'npm ci' first" >&2; exit 1; }
version=$(node -p "require('./$src/package.json').version")
mkdir -p "$dst"
cp "$src/dist/uPlot.iife.min.js" "$src/dist/uPlot.min.css" "$src/LICENSE" "$dst/"
echo "$version" > "$dst/VERSION"
echo "vendored uPlot $version into $dst"
