#!/usr/bin/env bash
# Instructions per unit of work, counted by valgrind's callgrind: the A/B for a change worth
# a few percent, which this machine's timing noise hides (two identical binaries measure
# 0.74-1.34 of each other per round with `profile.sh --ab`). Counts are of the whole
# proxy process (our code, libuv, nghttp2, BoringSSL, libc's malloc; never the kernel),
# nearly the same from run to run. Under valgrind the proxy runs about 50 times slower and
# sees no AVX-512, so the figures compare binaries; they are not speeds.
#
# Usage: scripts/bench/icount.sh [--build-dir DIR] [--ab DIR] [--units N]
#                                [--workloads "grpc-tls ka-tls ka-plain"]
#   --build-dir DIR  apm-tls-proxy, apm-intake-demo (default build/release)
#   --ab DIR         also apm-tls-proxy from DIR ("before"); prints after ÷ before
#   --units N        calls or requests measured per run (default 20000), after 2000 not
#                    counted (pools, session caches and HPACK tables warm)
#   --workloads      grpc-tls (h2load, 8 connections x 4 streams, 1 KiB messages: with
#                    more in flight, how many blocks overflow the per-thread BlockCache
#                    depends on valgrind's timing, and the count varies by a few percent),
#                    ka-tls and ka-plain (h2load --h1, 64 connections, 1 KiB POSTs)
#   --keep DIR       keep the counted dumps (callgrind_annotate DIR/WORKLOAD-after.out)
# Installs valgrind and nghttp2-client from Debian if missing. Loopback only; every
# process it starts is stopped by PID on exit; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=$PWD/build/release ab='' units=20000 warm=2000 workloads="grpc-tls ka-tls ka-plain" keep=
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) bin=$(cd "${2:?}" && pwd) && shift ;;
    --ab) ab=$(cd "${2:?}" && pwd) && shift ;;
    --units) units=${2:?} && shift ;;
    --workloads) workloads=${2:?} && shift ;;
    --keep) keep=${2:?} && mkdir -p "$keep" && shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) echo "icount: unknown argument $1" >&2 && exit 2 ;;
  esac
  shift
done

source scripts/bench/lib.sh
source scripts/bench/servers.sh
install_missing valgrind:valgrind h2load:nghttp2-client
hz=$(getconf CLK_TCK)
export hz
pin_server=() pin_load=()
tmp=$(mktemp -d /tmp/apm-icount.XXXXXX)
pids=() proxy=''
cleanup() {
  [ -n "$proxy" ] && kill -TERM "$proxy" 2>/dev/null
  stop_processes
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_pki
start_upstream

# load WORKLOAD ADDRESS COUNT: h2load with COUNT units against the proxy at ADDRESS.
load() {
  local w=$1 a=$2 n=$3
  case "$w" in
    grpc-tls) timeout 600 h2load -n "$n" -t 1 -c 8 -m 4 -H content-type:application/grpc \
      -H te:trailers -d "$tmp/grpc.bin" \
      "https://$a/opentelemetry.proto.collector.trace.v1.TraceService/Export" ;;
    ka-tls) timeout 600 h2load --h1 -n "$n" -t 1 -c 64 -d "$tmp/post.bin" \
      -H content-type:application/x-ndjson "https://$a/intake/v2/events" ;;
    ka-plain) timeout 600 h2load --h1 -n "$n" -t 1 -c 64 -d "$tmp/post.bin" \
      -H content-type:application/x-ndjson "http://$a/intake/v2/events" ;;
    *) echo "icount: unknown workload $w" >&2 && return 2 ;;
  esac
}
python3 -c 'import sys; sys.stdout.buffer.write(b"x" * 1023 + b"\n")' >"$tmp/post.bin"

# count SIDE DIR WORKLOAD: the proxy from DIR under callgrind; prints and returns (in
# $per_unit) its instructions per unit between a zeroing after the warm-up and a dump.
count() {
  local side=$1 dir=$2 w=$3 endpoint=tls ready out succeeded
  [ "$w" = ka-plain ] && endpoint=plain
  proxy_config "$endpoint" 1 off >"$tmp/proxy.toml"
  ready=$tmp/$side-$w.ready
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$side.$w.%p" \
    --dump-instr=no --collect-jumps=no "$dir/apm-tls-proxy" run --config "$tmp/proxy.toml" \
    --ready-file "$ready" 2>>"$tmp/valgrind.log" &
  proxy=$!
  wait_file "$ready" 120
  local a
  a=$(sed -n 's/^listen=//p' "$ready")
  load "$w" "$a" "$warm" >/dev/null 2>&1
  callgrind_control -z "$proxy" >/dev/null 2>&1
  out=$(load "$w" "$a" "$units" 2>&1)
  callgrind_control -d "$proxy" >/dev/null 2>&1
  sleep 1
  succeeded=$(sed -n 's/^requests:.* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  kill -TERM "$proxy" 2>/dev/null || true
  wait "$proxy" 2>/dev/null || true
  proxy=''
  # The dump after -z holds the counted part; the final one at exit is not read.
  local ir
  ir=$(awk '/^summary:/ { print $2 }' "$tmp"/cg."$side"."$w".*.1 2>/dev/null || true)
  if [ -z "$ir" ] || [ "${succeeded:-0}" -ne "$units" ]; then
    echo "  $w $side: no count (succeeded ${succeeded:-0} of $units; see $tmp/valgrind.log)"
    per_unit=''
    return 0
  fi
  [ -n "$keep" ] && cp "$tmp"/cg."$side"."$w".*.1 "$keep/$w-$side.out"
  per_unit=$(calc "$ir / $units" 0)
  echo "  $w $side: $per_unit instructions per unit ($ir for $units)"
}

echo "icount: tree $(git rev-parse --short HEAD), after $bin${ab:+, before $ab}, $(date -u +%FT%TZ)"
for w in $workloads; do
  count after "$bin" "$w"
  after=$per_unit
  [ -n "$ab" ] || continue
  count before "$ab" "$w"
  before=$per_unit
  if [ -n "$after" ] && [ -n "$before" ]; then
    echo "  $w after ÷ before: $(calc "$after / $before" 3)"
  fi
done
