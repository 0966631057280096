#!/usr/bin/env bash
# Installs Debian's Chromium for the browser demo's test (test/examples/browser.spec.ts drives it
# through playwright-core; no browser download). Idempotent: does nothing when /usr/bin/chromium
# exists; runs apt-get update only when the package lists do not know the package yet.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "install-chromium: must run as root or with sudo available" >&2
    exit 1
  fi
fi

has_candidate() {
  apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ { found = ($2 != "(none)") } END { exit !found }'
}

if ! has_candidate; then
  "${SUDO[@]}" apt-get update
fi
install() {
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends chromium
}
# Stale lists can name a version the mirror no longer has: refresh once and retry.
if ! install; then
  "${SUDO[@]}" apt-get update
  install
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "install-chromium: installation finished but /usr/bin/chromium is missing" >&2
  exit 1
fi
echo "install-chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
