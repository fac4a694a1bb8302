#!/usr/bin/env bash
# Profiles apm-tls-proxy, nginx and HAProxy under the benchmark's loads (issue 12 item 3):
# for each workload and server, one run under `perf record -e cpu-clock -g` (CPU split by
# place: kernel, TLS library, the server's own code, libuv, libc; and the top symbols),
# then one run under `strace -f` (system calls per unit of work, bytes per read and
# write), then one with `perf stat` on a uprobe at libc's malloc (allocations per unit of
# work; none when the probe cannot be placed). Same servers, certificates and loads as scripts/bench.sh (scripts/bench/*.sh).
# After each workload a ceiling: the most ours ÷ best peer could reach with the same
# system calls if our own code cost nothing (the peer's CPU per unit ÷ our kernel's).
# See docs/benchmarks.md, "Where the remaining gap is".
#
# Usage: scripts/bench/profile.sh [--build-dir DIR] [--seconds N] [--keep DIR]
#                                 [--workloads "ka-tls ..."] [--servers "proxy nginx haproxy"]
#   --build-dir DIR  apm-tls-proxy, apm-intake-demo, apm-bench-client (default build/release)
#   --seconds N      length of each perf run (default 4); strace runs last N-1 seconds
#   --workloads      any of ka-tls ka-plain hs-ecdsa hs-rsa hs-mtls up-tls up-plain grpc-tls
#                    grpc-rate
#   --keep DIR       keep the perf data and strace logs in DIR (for perf report by hand)
#   --call-graph M   perf's call-graph mode: fp (default) or dwarf (callers inside libc)
#   --ab DIR --rounds N  no profiles: apm-tls-proxy from DIR (before) against --build-dir
#                    (after), the workloads run back to back for N rounds (default 4), the
#                    order alternating; prints each run and the after/before ratio per round
#                    (round 1 first); --ab also takes grpc-tls and grpc-rate (h2load, as
#                    in bench.sh)
# Installs linux-perf and strace from Debian if missing (and what bench.sh installs).
# Loopback only; every process it starts is stopped by PID on exit; every run is bounded.
# strace slows a server several-fold: its counts are per unit of work, never per second.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

bin=$root/build/release seconds=4 keep='' call_graph=fp ab='' ab_rounds=4
wanted_workloads="ka-tls ka-plain up-tls hs-ecdsa hs-rsa hs-mtls"
wanted_servers="proxy nginx haproxy"
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) bin=$(cd "${2:?}" && pwd) && shift ;;
    --seconds) seconds=${2:?} && shift ;;
    --workloads) wanted_workloads=${2:?} && shift ;;
    --servers) wanted_servers=${2:?} && shift ;;
    --keep) keep=${2:?} && mkdir -p "$keep" && shift ;;
    --call-graph) call_graph=${2:?} && shift ;;
    --ab) ab=$(cd "${2:?}" && pwd) && shift ;;
    --rounds) ab_rounds=${2:?} && shift ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) echo "profile: unknown argument $1" >&2 && exit 2 ;;
  esac
  shift
done

wrk_seconds=$seconds hs_seconds=$seconds grpc_seconds=$seconds stream_mib=$((seconds * 384)) idle_count=0
wrk_connections=64 hs_concurrency=32 grpc_clients=8 grpc_streams=32 grpc_rate=6400
source scripts/bench/lib.sh
source scripts/bench/servers.sh
source scripts/bench/workloads.sh

install_missing perf:linux-perf strace:strace nginx:nginx-light haproxy:haproxy wrk:wrk
export PATH=$PATH:/usr/sbin
hz=$(getconf CLK_TCK)
pin_server=() pin_load=()
if [ "$(nproc)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
  pin_server=(taskset -c 0) pin_load=(taskset -c 1)
fi

tmp=$(mktemp -d /tmp/apm-profile.XXXXXX)
pids=() load='' tracer='' malloc_probe=''
cleanup() {
  local pid
  # The load and strace of a run in progress (each is cleared once reaped, so that a PID
  # the system gave to someone else since is never signalled).
  for pid in $load $tracer; do kill -TERM "$pid" 2>/dev/null || true; done
  stop_processes
  [ -n "$malloc_probe" ] && perf probe -q -d "$malloc_probe" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make_pki
start_upstream

# The one process that serves (nginx: its worker; the master is idle under load).
serving_pid() {
  case "$1" in
    nginx) echo "${pid_of[nginx.worker]}" ;;
    *) echo "${pid_of[$1.$2]}" ;;
  esac
}
# work_done: the unit count of the last run's output ($out), as run_* recorded it.
work_done() {
  case "$1" in
    ka-*) grep -oE '[0-9]+ requests in' <<<"$out" | awk '{print $1}' ;;
    hs-*) field handshakes "$out" ;;
    up-*) calc "$(field bytes "$out") / 1e6" 3 ;;
    grpc-*) sed -n 's/^requests:.* \([0-9]*\) succeeded.*/\1/p' <<<"$out" ;;
  esac
}
unit_of() {
  case "$1" in ka-*) echo request ;; hs-*) echo handshake ;; up-*) echo MB ;; grpc-*) echo call ;; esac
}

# in_background CMD...: runs CMD with the load's output in $tmp/load.out; sets $load.
in_background() {
  "${pin_load[@]}" "$@" >"$tmp/load.out" 2>&1 &
  load=$!
}
# reap_load: waits for the load started by in_background.
reap_load() {
  wait "$load" || true
  load=''
}
# load_cmd WORKLOAD SERVER SECONDS: the load of one workload (as workloads.sh runs it).
load_cmd() {
  local w=$1 s=$2 d=$3 a=${addr[$2.$(endpoint_of "$1")]}
  case "$w" in
    ka-tls | ka-plain)
      local scheme=https
      [ "$w" = ka-plain ] && scheme=http
      echo timeout $((d + 20)) wrk -t1 -c"$wrk_connections" -d"${d}s" -s "$tmp/post.lua" \
        "$scheme://$a/intake/v2/events" ;;
    hs-ecdsa) echo timeout $((d + 30)) "$bin/apm-bench-client" handshake --connect "$a" \
      --duration "$d" --concurrency "$hs_concurrency" ;;
    hs-rsa) echo timeout $((d + 30)) "$bin/apm-bench-client" handshake --connect "$a" \
      --duration "$d" --concurrency "$hs_concurrency" --tls12 ;;
    hs-mtls) echo timeout $((d + 30)) "$bin/apm-bench-client" handshake --connect "$a" \
      --duration "$d" --concurrency "$hs_concurrency" --cert "$client_crt" --key "$client_key" ;;
    up-tls) echo timeout 120 "$bin/apm-bench-client" upload --connect "$a" --chunked \
      --bytes $((d * 96 << 20)) --requests 1 --tls ;;
    up-plain) echo timeout 120 "$bin/apm-bench-client" upload --connect "$a" --chunked \
      --bytes $((d * 160 << 20)) --requests 1 ;;
    grpc-tls | grpc-rate)
      # As run_grpc runs them; the header values are written without a space, since this
      # command line is split on spaces (h2load reads "name:value" the same).
      local rate=()
      [ "$w" = grpc-rate ] && rate=(--rps $((grpc_rate / grpc_clients)))
      echo timeout $((d + 20)) h2load -D "$d" -t 1 "${rate[@]}" -c "$grpc_clients" -m "$grpc_streams" \
        -H content-type:application/grpc -H te:trailers -d "$tmp/grpc.bin" \
        "https://$a/opentelemetry.proto.collector.trace.v1.TraceService/Export" ;;
  esac
}

# traced_load WORKLOAD SERVER TRACER...: the workload's load, a second shorter than the
# perf run, with TRACER (strace, perf stat) running from half a second before it (to
# attach to every thread) until it ends (SIGINT); sets $out and $units.
traced_load() {
  local w=$1 s=$2 cmd
  shift 2
  read -r -a cmd <<<"$(load_cmd "$w" "$s" $((seconds - 1)))"
  "$@" &
  tracer=$!
  sleep 0.5
  in_background "${cmd[@]}"
  reap_load
  kill -INT "$tracer" 2>/dev/null || true
  wait "$tracer" 2>/dev/null || true
  tracer=''
  out=$(cat "$tmp/load.out")
  units=$(work_done "$w")
}

# CPU split of a perf.data by place, in % of samples.
perf_split() {
  perf report -i "$1" --stdio --no-children --sort dso -q 2>/dev/null | awk '
    $1 ~ /%$/ { p = $1; sub(/%/, "", p); d = $2
      if (d ~ /kernel|vmlinux|\[unknown\]/) k += p
      else if (d ~ /libssl|libcrypto/) c += p
      else if (d ~ /^apm-tls-proxy$|^nginx$|^haproxy$/) o += p
      else if (d ~ /libuv/) u += p
      else if (d ~ /^libc[.-]|^ld-linux/) l += p
      else x += p }
    END { printf "kernel %.0f%%, TLS library %.0f%%, own code %.0f%%, libuv %.0f%%, libc %.0f%%, other %.0f%%\n", k, c, o, u, l, x }'
}
perf_top() {
  perf report -i "$1" --stdio --no-children --sort dso,sym -q 2>/dev/null |
    awk -v top="${2:-12}" '$1 ~ /%$/ && NF >= 4 && n++ < top { $3 = ""; print "      " $0 }'
}
# The most ours ÷ best peer could reach with the same system calls (and library calls) if
# our own code cost nothing: the best peer's CPU per unit over our kernel's (and over the
# kernel's plus the libraries': BoringSSL, and "other", which is nghttp2 and libstdc++;
# libc stays ours: its share is system-call wrappers and our allocations). Rates and
# splits come from the perf runs above.
declare -A rate_of=() kernel_of=() libs_of=()
kernel_bound() {
  local w=$1 s best=0
  [ -n "${rate_of[proxy]:-}" ] && [ "${kernel_of[proxy]:-0}" -gt 0 ] || return 0
  for s in $wanted_servers; do
    [ "$s" = proxy ] || [ -z "${rate_of[$s]:-}" ] && continue
    awk "BEGIN { exit !(${rate_of[$s]} > $best) }" && best=${rate_of[$s]}
  done
  awk "BEGIN { exit !($best > 0) }" || return 0
  echo "  $w ceiling, ours ÷ best peer with our own code free: $(calc "${rate_of[proxy]} * 100 / ($best * ${kernel_of[proxy]})" 2) (kernel alone), $(calc "${rate_of[proxy]} * 100 / ($best * (${kernel_of[proxy]} + ${libs_of[proxy]}))" 2) (kernel and libraries)"
}
# Per unit: system calls by name, and the mean bytes of successful reads and writes.
strace_summary() {
  awk -v units="$2" '
    match($0, /^[0-9]+ +[a-z_0-9]+\(/) {
      s = substr($0, RSTART, RLENGTH - 1); sub(/^[0-9]+ +/, "", s); n[s]++; total++
      if (match($0, /= [0-9]+$/)) { v = substr($0, RSTART + 2) + 0; bytes[s] += v; ok[s]++ }
    }
    END {
      if (units <= 0) { print "      (no work done)"; exit }
      printf "      %.2f system calls per unit:", total / units
      for (s in n) if (n[s] / units >= 0.01) printf " %s %.2f", s, n[s] / units
      printf "\n      mean bytes:"
      for (s in n) if (s ~ /^(read|write|writev|readv|recvfrom|sendto|sendmsg|recvmsg)$/ && ok[s])
        printf " %s %.0f", s, bytes[s] / ok[s]
      printf "\n" }' "$1"
}

# --ab: before (proxy_a, from $ab) and after (proxy_b) in alternating order, per round.
if [ -n "$ab" ]; then
  results_file=$tmp/ab.tsv
  bin=$ab start_proxy_as proxy_a 1 off plain tls rsa mtls
  start_proxy_as proxy_b 1 off plain tls rsa mtls
  echo "profile --ab: before $ab, after $bin, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
  for ((round = 1; round <= ab_rounds; round++)); do
    order=(proxy_a proxy_b)
    [ $((round % 2)) = 0 ] && order=(proxy_b proxy_a)
    for w in $wanted_workloads; do
      for s in "${order[@]}"; do run_workload "$w" "$s"; done
    done
  done
  echo "after / before, per round:"
  awk -F'\t' '{ v[$1 FS $2 FS $3] = $4; w[$2] = 1; r[$1] = 1 }
    END { for (k in w) { line = ""; for (i = 1; i in r; i++) { a = v[i FS k FS "proxy_a"]; b = v[i FS k FS "proxy_b"]
      if (a > 0) line = line sprintf(" %.3f", b / a) } print "  " k ":" line } }' "$results_file"
  exit 0
fi

# A uprobe at glibc's malloc counts every allocation of the measured process (our own,
# libuv's, nghttp2's, BoringSSL's; nginx's and HAProxy's pools allocate rarely).
libc_path=$(ldconfig -p | awk '/libc\.so\.6 .*x86-64/ { print $NF; exit }')
if [ -n "$libc_path" ] && perf probe -q -x "$libc_path" --add 'profile_malloc=malloc' 2>/dev/null; then
  malloc_probe=probe_libc:profile_malloc
fi

for s in $wanted_servers; do start_server "$s"; done
for s in $wanted_servers; do  # warm the upstream pools and session caches
  "${pin_load[@]}" timeout 20 wrk -t1 -c"$wrk_connections" -d1s -s "$tmp/post.lua" \
    "https://${addr[$s.tls]}/intake/v2/events" >/dev/null 2>&1 || true
done
echo "profile: tree $(git rev-parse --short HEAD), binaries $bin, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
for w in $wanted_workloads; do
  rate_of=() kernel_of=() libs_of=()
  for s in $wanted_servers; do
    pid=$(serving_pid "$s" "$(endpoint_of "$w")")
    read -r -a measured <<<"$(cpu_pids "$s" "$(endpoint_of "$w")")"
    # 1. perf: the load runs a second longer than the recording.
    cpu_before=$(cpu_ns "${measured[@]}")
    read -r -a cmd <<<"$(load_cmd "$w" "$s" $((seconds + 1)))"
    in_background "${cmd[@]}"
    perf record -e cpu-clock -F 2000 --call-graph "$call_graph" -p "$pid" -o "$tmp/perf.data" -- sleep "$seconds" \
      >/dev/null 2>&1 || true
    reap_load
    cpu_after=$(cpu_ns "${measured[@]}")
    out=$(cat "$tmp/load.out")
    cpu=$(calc "($cpu_after - $cpu_before) / 1e9" 3)
    rate_of[$s]=$(per_cpu "$(work_done "$w")")
    split=$(perf_split "$tmp/perf.data")
    echo "$w $s: ${rate_of[$s]} $(unit_of "$w")s per CPU-second (under perf)"
    echo "    CPU: $split"
    read -r "kernel_of[$s]" "libs_of[$s]" < <(sed -E \
      's/kernel ([0-9]+)%, TLS library ([0-9]+)%.*other ([0-9]+)%/\1 \2 + \3/' <<<"$split")
    perf_top "$tmp/perf.data" 12
    [ -n "$keep" ] && cp "$tmp/perf.data" "$keep/$w-$s.perf.data"
    # 2. strace over the whole of a shorter load, so every call is counted once.
    traced_load "$w" "$s" strace -f -qq -s 0 -o "$tmp/strace.log" -p "$pid"
    echo "    strace: ${units:-0} $(unit_of "$w")s"
    sed -i 's/^\([0-9]*\) */\1 /' "$tmp/strace.log"
    strace_summary "$tmp/strace.log" "${units:-0}"
    [ -n "$keep" ] && cp "$tmp/strace.log" "$keep/$w-$s.strace"
    # 3. malloc calls, over the whole of a shorter load as for strace.
    [ -n "$malloc_probe" ] || continue
    traced_load "$w" "$s" perf stat -x, -e "$malloc_probe" -o "$tmp/mallocs.csv" -p "$pid"
    mallocs=$(awk -F, -v e="$malloc_probe" '$3 == e { print $1 }' "$tmp/mallocs.csv")
    if [ -n "$mallocs" ] && awk "BEGIN { exit !(${units:-0} > 0) }"; then
      echo "    malloc: $(calc "$mallocs / $units" 1) calls per $(unit_of "$w") ($mallocs for $units)"
    fi
  done
  kernel_bound "$w"
done
