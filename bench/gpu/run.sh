#!/usr/bin/env bash
# The GPU benchmark in one command (bench/gpu/README.md), from .gpubench/ (bench/gpu/prepare.sh):
# no network, no npm, no Node needed on the machine. Prints the tables of bench/gpu-profiles.ts
# (CPU-driver profile, GPU profile, autotuned) and of the PyTorch peer on the same GPU.
# Usage: [ROUNDS=3] bench/gpu/run.sh [gpu|small|tiny]   (default gpu: the H200 sizes; tiny: a check in seconds)
# Results: $OUT (when set, e.g. on the device machine) or bench/results/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
C="$ROOT/.gpubench"
SIZES=${1:-gpu}
DEST=${OUT:-$ROOT/bench/results}
[ -f "$C/bench.mjs" ] || { echo "run: $C is missing: run bench/gpu/prepare.sh first" >&2; exit 1; }
mkdir -p "$DEST"

# The Vulkan loader, when the image has none (root: unpacks into /).
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  for f in "$C"/deb/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# The NVIDIA ICD where the container mounts it outside the loader's default paths.
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

# Node and the webgpu package, unpacked in a scratch folder beside the bundle.
T=$(mktemp -d /tmp/kf-gpubench.XXXXXX)
tar -xzf "$C/node.tgz" -C "$T"
NODE="$T/package/bin/node"
mkdir -p "$T/node_modules/webgpu/dist/linux-x64"
cp "$C/webgpu/"* "$T/node_modules/webgpu/"
gunzip -c "$C/dawn.node.gz" >"$T/node_modules/webgpu/dist/linux-x64/dawn.node"
cp "$C/bench.mjs" "$T/"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
echo "node $("$NODE" --version), sizes $SIZES, results in $DEST"

cd "$T"
"$NODE" bench.mjs --sizes "$SIZES" --rounds "${ROUNDS:-3}" --out "$DEST/gpu-profiles-$SIZES.json" 2>&1 | grep -v '^Warning: maxDynamic'

# The peer: the same Gaussian sum through PyTorch, dense and blocked, on the same GPU.
if python3 -c 'import torch' 2>/dev/null; then
  python3 "$C/torch_peer.py" --sizes "$SIZES" --out "$DEST/torch-peer-$SIZES.json"
else
  echo "run: python3 with torch not found: no PyTorch peer"
fi
rm -rf "$T"
