#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite (unit + integration) with
# ctest. Usage: scripts/test.sh [PRESET] [extra ctest args]. PRESET: release (default),
# dev, or asan (AddressSanitizer + UndefinedBehaviorSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
scripts/build.sh "$preset"
# The real OTLP/gRPC exporters and grpc-js the HTTP/2 tests drive (tests/clients).
scripts/setup-npm.sh
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
jobs="$(nproc 2>/dev/null || echo 2)"
ctest --preset "$preset" -j "$jobs" --timeout 300 "$@"
