#!/usr/bin/env bash
# Installs Debian's NATS server for the cluster tests (test/cluster/ start it on 127.0.0.1 with
# JetStream, a temporary store and a free port; nothing runs as a system service). Idempotent:
# does nothing when nats-server is on the PATH; runs apt-get update only when the package lists
# do not know the package yet. Debian's package enables a systemd unit; where systemd runs, it is
# stopped and disabled again so that no server keeps port 4222 busy.
set -euo pipefail

if command -v nats-server >/dev/null 2>&1; then
  echo "install-nats: $(nats-server --version) already installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "install-nats: must run as root or with sudo available" >&2
    exit 1
  fi
fi

has_candidate() {
  apt-cache policy nats-server 2>/dev/null | awk '/Candidate:/ { found = ($2 != "(none)") } END { exit !found }'
}

if ! has_candidate; then
  "${SUDO[@]}" apt-get update
fi
install() {
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y --no-install-recommends nats-server
}
# Stale lists can name a version the mirror no longer has: refresh once and retry.
if ! install; then
  "${SUDO[@]}" apt-get update
  install
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  "${SUDO[@]}" systemctl disable --now nats-server >/dev/null 2>&1 || true
fi

if ! command -v nats-server >/dev/null 2>&1; then
  echo "install-nats: installation finished but nats-server is not on the PATH" >&2
  exit 1
fi
echo "install-nats: installed $(nats-server --version)"
