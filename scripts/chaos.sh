#!/usr/bin/env bash
# The chaos test (tests/chaos/chaos.py, docs/testing.md): the real binary under load
# while its upstream is killed, restarted, refuses, cuts, stalls and resets, clients
# abort, idle connections come and go and the certificate is rotated. Exits non-zero on
# any violation (crash, sanitizer report, unanswered request, fake 2xx, duplicate, RSS
# growth, unclean SIGTERM).
# Usage: scripts/chaos.sh [SECONDS] [BINARY]
#   SECONDS  length of the chaos phase (default 45; the warm-up adds a few seconds)
#   BINARY   default build/asan/apm-tls-proxy, built (that target only) when missing
# Env: CHAOS_SEED to replay a run, CHAOS_WORK scratch dir (default build/chaos/run),
#      CHAOS_ARGS extra arguments for chaos.py (--clients N, --bound S, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-45}"
binary="${2:-build/asan/apm-tls-proxy}"
if [ ! -x "$binary" ] && [ "$binary" = build/asan/apm-tls-proxy ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$(nproc 2>/dev/null || echo 2)" --target apm-tls-proxy
fi
if [ ! -x "$binary" ]; then
  echo "chaos.sh: no executable $binary" >&2
  exit 2
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
seed_args=()
if [ -n "${CHAOS_SEED:-}" ]; then seed_args=(--seed "$CHAOS_SEED"); fi
# shellcheck disable=SC2086 # CHAOS_ARGS is a list of words on purpose
exec /usr/bin/python3 tests/chaos/chaos.py --proxy "$binary" --seconds "$seconds" \
  --work "${CHAOS_WORK:-build/chaos/run}" "${seed_args[@]}" ${CHAOS_ARGS:-}
