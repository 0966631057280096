#!/usr/bin/env bash
# Installs the lavapipe Vulkan driver (Mesa's CPU implementation of Vulkan) so that WebGPU
# (Dawn, through the `webgpu` npm package) finds an adapter on a machine without a GPU.
# Dawn needs Mesa >= 25; Debian bookworm ships 22.3, so the driver comes from bookworm-backports.
# Idempotent: does nothing when a recent enough lavapipe is already installed.
set -euo pipefail

MIN_MESA_MAJOR=25
PKGS=(mesa-vulkan-drivers libvulkan1)

mesa_major() {
  dpkg-query -W -f='${Status} ${Version}\n' mesa-vulkan-drivers 2>/dev/null \
    | awk '$1 == "install" && $3 == "installed" { split($4, v, "[.:]"); print (v[1] ~ /^[0-9]+$/ && $4 !~ /:/) ? v[1] : v[2]; exit }'
}

have_lavapipe() {
  local major
  major=$(mesa_major || true)
  [ -n "${major}" ] && [ "${major}" -ge "${MIN_MESA_MAJOR}" ] \
    && dpkg-query -W -f='${Status}\n' libvulkan1 2>/dev/null | grep -q 'install ok installed' \
    && ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1
}

if have_lavapipe; then
  echo "install-lavapipe: lavapipe (mesa-vulkan-drivers $(mesa_major).x) already installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "install-lavapipe: must run as root or with sudo available" >&2
    exit 1
  fi
fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
  echo "install-lavapipe: expected Debian bookworm, found '${VERSION_CODENAME:-unknown}'; installing from the default suites" >&2
  "${SUDO[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends "${PKGS[@]}"
else
  # This image uses deb822 sources (debian.sources); add backports the same way, once.
  SRC=/etc/apt/sources.list.d/bookworm-backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    "${SUDO[@]}" tee "$SRC" >/dev/null <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  fi
  "${SUDO[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends -t bookworm-backports "${PKGS[@]}"
fi

if ! have_lavapipe; then
  echo "install-lavapipe: installation finished but no lavapipe >= ${MIN_MESA_MAJOR} was found" >&2
  exit 1
fi
echo "install-lavapipe: installed lavapipe (mesa-vulkan-drivers $(mesa_major).x)"
