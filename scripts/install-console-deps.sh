#!/bin/sh
# The console's browser libraries from the npm registry (package.json), copied
# into the console's served files; nothing is fetched from a CDN at run time.
set -eu
cd "$(dirname "$0")/.."
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --ignore-scripts --silent
else
  npm install --no-audit --no-fund --ignore-scripts --silent
fi
mkdir -p api/console/js/vendor
cp node_modules/hls.js/dist/hls.min.mjs api/console/js/vendor/hls.js
cp node_modules/hls.js/LICENSE api/console/js/vendor/hls.LICENSE.txt
