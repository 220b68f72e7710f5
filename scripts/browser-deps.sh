#!/usr/bin/env bash
# Installs what the real-browser voice tests need, when it is missing: Debian's chromium,
# Node.js and npm (with apt-get), then the packages of tests/browser (npm ci). Anything that
# cannot be had is a loud failure: the tests never skip.
set -euo pipefail

say() { echo "browser-deps: $*" >&2; }
need=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { say "ERROR: cannot install ${need[*]} (no apt-get)"; exit 1; }
  say "installing ${need[*]}"
  apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
cd "$(dirname "$0")/../tests/browser"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ package.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
