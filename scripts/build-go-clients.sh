#!/usr/bin/env bash
# Builds the Go test clients (tests/clients/go/*) into OUT_DIR with Debian's Go toolchain
# (golang-go) in GOPATH mode against the packaged grpc-go sources under /usr/share/gocode
# (golang-google-grpc-dev): no module download. Called by the build (the go_clients target
# of tests/integration/grpc_go.cmake). Usage: scripts/build-go-clients.sh OUT_DIR
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
source_dir="$(cd "$(dirname "$0")/../tests/clients/go" && pwd)"
mkdir -p "$1"
out_dir="$(cd "$1" && pwd)"

if ! command -v go >/dev/null 2>&1; then
  echo "build-go-clients: go is missing: install golang-go (scripts/setup.sh)" >&2
  exit 1
fi
if [ ! -d /usr/share/gocode/src/google.golang.org/grpc ]; then
  echo "build-go-clients: grpc-go is missing: install golang-google-grpc-dev (scripts/setup.sh)" >&2
  exit 1
fi

export GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOCACHE="$out_dir/go-cache"
for client in "$source_dir"/*/; do
  name="$(basename "$client")"
  (cd "$client" && go build -o "$out_dir/$name" .)
done
