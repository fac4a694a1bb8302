#!/usr/bin/env bash
# Installs the Node.js test clients of tests/clients (the real OTLP/gRPC exporters and
# @grpc/grpc-js, exact versions from the committed package-lock.json) with `npm ci`.
# Idempotent and offline-friendly: when node_modules already matches the lock file (and
# this Node.js), it does nothing and needs no network. Installs Debian's nodejs and npm
# first if `node` or `npm` is missing (as root, or with sudo).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clients="$root/tests/clients"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "setup-npm: need root to install nodejs and npm" >&2
      exit 1
    fi
    sudo_cmd=(sudo)
  fi
  echo "setup-npm: installing nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# The lock file's hash and the Node.js version: what node_modules was installed from.
want="$(sha256sum "$clients/package-lock.json" | cut -d' ' -f1) node-$(node --version)"
stamp="$clients/node_modules/.setup-npm-stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "setup-npm: npm ci in tests/clients" >&2
# --ignore-scripts: none of these packages needs an install script to work (protobufjs's
# only checks versions), and a test dependency should not run code at install time.
(cd "$clients" && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
echo "$want" > "$stamp"
