#!/usr/bin/env bash
# Benchmarks apm-tls-proxy side by side with nginx and HAProxy (issue 12 item 1, issue 10
# item 9): the same certificates, TLS versions, upstream (apm-intake-demo) and load, one
# worker each, all pinned to the same CPU. Every workload runs against every server in
# interleaved rounds (the order rotates each round); figures are per CPU-second of each
# server's own process (/proc/PID/task/*/schedstat, else utime + stime), ratios are ours
# over the best peer in the same round. Prints each run, then a summary table.
# See docs/benchmarks.md.
#
# After the load workloads of each round, p99 latency at the same load (issue 12 item 2):
# apm-bench-client's open-loop rate mode sends the keep-alive 1 KiB POSTs to the three
# servers at the same moment, one client each, each at the same request rate (by default
# half the slowest server's closed-loop wall rate, TLS and plain each, shared among the
# three), with latency counted from each request's scheduled send time.
#
# Then, in the same rounds, apm-tls-proxy against itself (scripts/bench/variants.sh):
# `workers = 2` and the access log on next to one worker, and how the kernel spread
# connections across the two workers.
#
# Usage: scripts/bench.sh [--quick] [--no-build] [--build-dir DIR] [--rounds N]
#                         [--variants-only | --no-variants] [--rate N]
#   --quick          short runs, 500 idle connections, memory in the first round only
#                    (about 4 to 5 minutes on the shared 2-CPU machine; full: 14)
#   --no-build       use the build directory as it is (default: scripts/build.sh release)
#   --build-dir DIR  where apm-tls-proxy, apm-intake-demo and apm-bench-client are
#                    (default build/release; implies --no-build)
#   --rounds N       rounds (default 3; at least 3 for the ranges to mean anything)
#   --variants-only  only apm-tls-proxy against itself (no peers): 1 or 2 workers, access log
#   --no-variants    only the comparison with the peers
#   --rate N         each server's request rate in the latency workloads, every round
#                    (default: 50 % of the slowest server's closed-loop wall rate ÷ 3)
#
# Installs nginx-light, haproxy, wrk and nghttp2-client (h2load) from Debian if missing.
# BENCH_MARKDOWN=FILE also writes the summary as a Markdown table to FILE (and the raw
# results to FILE.tsv), for docs/benchmarks.md.
# Loopback only. Every process it starts is stopped by PID on exit; every run is bounded.
# A benchmark: it prints figures and never fails on a missed target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0 build=1 rounds=3 bin=$root/build/release peers=1 variants=1 fixed_rate='' rate_percent=50
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    --build-dir)
      bin=$(cd "${2:?--build-dir needs a directory}" && pwd) build=0
      shift
      ;;
    --rounds)
      rounds=${2:?--rounds needs a number}
      shift
      ;;
    --rate)
      fixed_rate=${2:?--rate needs requests per second}
      shift
      ;;
    --variants-only) peers=0 ;;
    --no-variants) variants=0 ;;
    -h | --help)
      sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "bench: unknown argument $1 (try --help)" >&2
      exit 2
      ;;
  esac
  shift
done

if [ "$quick" = 1 ]; then
  wrk_seconds=1 hs_seconds=1 grpc_seconds=1 rate_seconds=2 stream_mib=64 idle_count=500
  memory_rounds=1
else
  wrk_seconds=5 hs_seconds=4 grpc_seconds=4 rate_seconds=5 stream_mib=512 idle_count=5000
  memory_rounds=$rounds
fi
wrk_connections=64 hs_concurrency=32 grpc_clients=8 grpc_streams=32 grpc_rate=6400

source scripts/bench/lib.sh
source scripts/bench/servers.sh
source scripts/bench/workloads.sh
source scripts/bench/variants.sh

# ---- build and tools ----
if [ "$build" = 1 ]; then
  scripts/build.sh release >/dev/null
fi
for b in apm-tls-proxy apm-intake-demo apm-bench-client; do
  if [ ! -x "$bin/$b" ]; then
    echo "bench: $bin/$b is missing; run scripts/build.sh release" >&2
    exit 1
  fi
done
missing=()
for tool in nginx:nginx-light haproxy:haproxy wrk:wrk h2load:nghttp2-client; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]} (Debian packages)" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d keeps the packages' own services from starting where it is set up; the
  # bench never uses them and starts its own instances on free ports.
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
fi
export PATH=$PATH:/usr/sbin

hz=$(getconf CLK_TCK)
pin_server=() pin_load=()
if [ "$(nproc)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
  pin_server=(taskset -c 0) pin_load=(taskset -c 1)
fi
# Idle connections need two descriptors each in this shell's children.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ $((idle_count + 512)) -gt "$fd_limit" ]; then
  idle_count=$((fd_limit - 512))
fi

# ---- processes, stopped by PID on every exit path ----
tmp=$(mktemp -d /tmp/apm-bench.XXXXXX)
pids=()
trap stop_processes EXIT
trap 'exit 130' INT TERM

make_pki
start_upstream
for w in "${load_workloads[@]}" "${latency_workloads[@]}" "${memory_workloads[@]}"; do
  echo "$w|${workload_info[$w]}" >>"$tmp/workloads.tsv"
done
: >"$tmp/results.tsv"
: >"$tmp/variants.tsv"

# rotate N ITEMS...: the items rotated left by N.
rotate() {
  local n=$1
  shift
  local items=("$@") i
  for ((i = 0; i < ${#items[@]}; i++)); do echo "${items[$(((i + n) % ${#items[@]}))]}"; done
}
# after_run SERVER: a server that died is a finding: say so and start a fresh one.
after_run() {
  server_alive "$1" && return 0
  echo "bench: ${label[$1]} died during the last run; its last log lines:" >&2
  tail -5 "$tmp/proxy.log" "$tmp/$1"/*.log 2>/dev/null | sed 's/^/  /' >&2
  stop_server "$1"
  start_server "$1" || true
}

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
# The binaries may come from another source tree (--build-dir): name it.
source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$bin/CMakeCache.txt" 2>/dev/null || true)
echo "apm-tls-proxy benchmark: tree $commit$(git -C "$root" diff --quiet HEAD -- proxy 2>/dev/null || echo ' (proxy/ has uncommitted changes)'), binaries from $bin (source ${source_dir:-?})," \
  "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$rounds rounds$([ "$quick" = 1 ] && echo ', --quick')"
echo "servers pinned: ${pin_server[*]:-no}, load pinned: ${pin_load[*]:-no};" \
  "$(nginx -v 2>&1 | sed 's/.*version: //'), $(haproxy -v | head -1 | cut -d' ' -f1-3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(h2load --version | cut -d' ' -f2)"
echo "Figures per CPU-second of each server's own process; wall rates are context."

for ((round = 1; round <= rounds; round++)); do
  if [ "$peers" = 0 ]; then
    echo
    echo "== round $round of $rounds at ${SECONDS}s; load $(cut -d' ' -f1 /proc/loadavg)"
    results_file=$tmp/variants.tsv run_variants "$round"
    continue
  fi
  mapfile -t order < <(rotate $((round - 1)) "${servers[@]}")
  mapfile -t work < <(rotate $((round - 1)) "${load_workloads[@]}")
  echo
  echo "== round $round of $rounds at ${SECONDS}s: servers ${order[*]}; load $(cut -d' ' -f1 /proc/loadavg)"
  for s in "${order[@]}"; do start_server "$s" || true; done
  if [ "$round" = 1 ]; then
    # What wrk (OpenSSL) negotiates with each, and a warm-up of their upstream pools.
    for s in "${order[@]}"; do
      nego=$(timeout 10 openssl s_client -connect "${addr[$s.tls]}" -servername localhost \
        </dev/null 2>/dev/null | sed -n 's/^New, \([^,]*\), Cipher is \(.*\)/\1 \2/p' | head -1 || true)
      echo "  ${label[$s]}: OpenSSL clients get ${nego:-?}"
      "${pin_load[@]}" timeout 20 wrk -t1 -c"$wrk_connections" -d1s -s "$tmp/post.lua" \
        "https://${addr[$s.tls]}/intake/v2/events" >/dev/null 2>&1 || true
    done
  fi
  for w in "${work[@]}"; do
    for s in "${order[@]}"; do
      run_workload "$w" "$s"
      after_run "$s"
    done
  done
  # Latency at the same load, the servers loaded together: after the closed-loop runs
  # that set its rate.
  mapfile -t work < <(rotate $((round - 1)) "${latency_workloads[@]}")
  for w in "${work[@]}"; do
    echo "  $w: each server at $(latency_rate "$w" ${#order[@]} || true) req/s, all at once"
    run_rates_together "$w" "${order[@]}"
    for s in "${order[@]}"; do after_run "$s"; done
  done
  for s in "${order[@]}"; do stop_server "$s"; done
  if [ "$round" -le "$memory_rounds" ]; then
    for w in "${memory_workloads[@]}"; do
      for s in "${order[@]}"; do run_workload "$w" "$s"; done
    done
  fi
  if [ "$variants" = 1 ]; then results_file=$tmp/variants.tsv run_variants "$round"; fi
done

if [ -s "$tmp/proxy.log" ]; then
  echo
  echo "apm-tls-proxy stderr (last 5 of $(wc -l <"$tmp/proxy.log") lines):"
  tail -5 "$tmp/proxy.log"
fi
echo
echo "Summary after ${SECONDS}s (load $(cut -d' ' -f1-3 /proc/loadavg)). The machine is shared"
echo "with other work: trust the same-round ratios most."
if [ "$peers" = 1 ]; then
  echo
  echo "Side by side: medians over rounds; ratios are ours ÷ best peer in the same round"
  echo "(memory: lower is better, the target is absolute)."
  python3 scripts/bench/summary.py "$tmp/results.tsv" "$tmp/workloads.tsv"
fi
if [ "$variants" = 1 ]; then
  echo
  echo "apm-tls-proxy against itself: medians over rounds; ratios are the variant ÷ 1 worker in"
  echo "the same round (memory: lower is better). Spread: fewest ÷ most connections accepted by"
  echo "one worker of two (1.00 = even)."
  python3 scripts/bench/summary.py "$tmp/variants.tsv" "$tmp/workloads.tsv" --variants
fi
if [ -n "${BENCH_MARKDOWN:-}" ]; then
  {
    [ "$peers" = 1 ] && python3 scripts/bench/summary.py "$tmp/results.tsv" "$tmp/workloads.tsv" --markdown
    [ "$variants" = 1 ] && echo &&
      python3 scripts/bench/summary.py "$tmp/variants.tsv" "$tmp/workloads.tsv" --variants --markdown
    true
  } >"$BENCH_MARKDOWN"
  cp "$tmp/results.tsv" "$BENCH_MARKDOWN.tsv"
  cp "$tmp/variants.tsv" "$BENCH_MARKDOWN.variants.tsv"
fi
