#!/usr/bin/env bash
# Installs what apm-tls-proxy needs to build and test, from Debian bookworm packages
# only. Idempotent: installs only what is missing. Must run as root (or with sudo).
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ pkg-config make
  # libraries (../shared/reference/dependencies.md)
  libuv1-dev android-libboringssl-dev node-llhttp libtomlplusplus-dev catch2
  # used by the tests and the quick start: real clients
  curl openssl ca-certificates procps
  # HTTP/2 (nghttp2), reading apm-server.yml (yaml-cpp)
  libnghttp2-dev libyaml-cpp-dev
  # HTTP/2 test clients: nghttp and h2load, raw frames from python h2
  nghttp2-client python3-h2
  # the grpc-go test client (tests/clients/go, scripts/build-go-clients.sh): Go and grpc-go
  golang-go golang-google-grpc-dev
  # the tests' JSON reader (tests/support/json.cc)
  nlohmann-json3-dev
  # CI's include-graph check (scripts/check-includes.py) and the chaos test
  python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
