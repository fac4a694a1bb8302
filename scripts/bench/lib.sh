# shellcheck shell=bash disable=SC2154
# Helpers for scripts/bench.sh (sourced, never run): waiting, CPU time, arithmetic, and the
# results file every workload appends to. See docs/benchmarks.md.

# install_missing TOOL:PACKAGE...: installs from Debian each PACKAGE whose TOOL is neither
# on PATH nor in /usr/sbin (with sudo when not root).
install_missing() {
  local tool missing=() sudo_cmd=()
  for tool in "$@"; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] ||
      missing+=("${tool#*:}")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# wait_file PATH SECONDS: polls until PATH exists and is not empty.
wait_file() {
  local deadline=$((SECONDS + $2))
  while [ ! -s "$1" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "bench: timed out waiting for $1" >&2
      return 1
    fi
    sleep 0.05
  done
}

# wait_port PORT SECONDS: polls until something listens on 127.0.0.1:PORT.
wait_port() {
  local deadline=$((SECONDS + $2))
  until (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "bench: nothing listens on 127.0.0.1:$1 after $2 s" >&2
      return 1
    fi
    sleep 0.05
  done
}

# free_port: a TCP port on 127.0.0.1 that nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cpu_ns PID...: CPU time so far of every thread of the given processes, in nanoseconds.
# schedstat counts exact run time; utime + stime from /proc/PID/stat (clock ticks) is the
# fallback. Both are the process's own CPU time, whatever else runs on the machine.
cpu_ns() {
  local pid t total=0
  for pid in "$@"; do
    t=$(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {if (NR) printf "%.0f", s}')
    if [ -z "$t" ]; then
      t=$(awk -v hz="$hz" '{printf "%.0f", ($14 + $15) * 1e9 / hz}' "/proc/$pid/stat" 2>/dev/null)
    fi
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# runq_ns PID...: how long their threads have waited, runnable, for a CPU (nanoseconds;
# schedstat's second field). Latency that comes from the machine, not from the server.
runq_ns() {
  local pid
  for pid in "$@"; do cat /proc/"$pid"/task/*/schedstat 2>/dev/null; done |
    awk '{s += $2} END {printf "%.0f", s}'
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# field KEY TEXT: the value of KEY=VALUE in a client's output line.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -1; }
calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }

# record WORKLOAD SERVER VALUE P50_MS P99_MS DETAIL: one measurement of this round into
# $results_file (default results.tsv; "-" where there is none). An empty VALUE means the run failed (the detail
# says why); it never stops the benchmark.
record() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$1" "$2" "${3:--}" "${4:--}" "${5:--}" "$6" \
    >>"${results_file:-$tmp/results.tsv}"
  printf '  %-9s %-8s %10s  p50/p99 %s/%s ms  %s\n' "$1" "$2" "${3:--}" "${4:--}" "${5:--}" "$6"
}

# Starts apm-intake-demo (HTTP/1.1 and h2c on one port) on a free loopback port, pinned
# with the load, records its PID in `pids` and its address in `upstream`, and writes the
# loads' inputs: wrk's 1 KiB POST script ($tmp/post.lua) and h2load's gRPC message
# ($tmp/grpc.bin). Needs `bin`, `tmp`, `pids` and `pin_load`.
start_upstream() {
  "${pin_load[@]}" "$bin/apm-intake-demo" --listen 127.0.0.1:0 --quiet \
    --ready-file "$tmp/demo.ready" 2>"$tmp/demo.log" &
  pids+=($!)
  wait_file "$tmp/demo.ready" 10
  # shellcheck disable=SC2034  # read by the caller and servers.sh
  upstream=$(sed -n 's/^listen=//p' "$tmp/demo.ready")
  cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 1023) .. "\n"
wrk.headers["Content-Type"] = "application/x-ndjson"
LUA
  # One gRPC message: the 5-byte prefix (uncompressed, 1019-byte length) and its payload.
  python3 -c 'import sys; sys.stdout.buffer.write(b"\0" + (1019).to_bytes(4, "big") + b"x" * 1019)' \
    >"$tmp/grpc.bin"
}

# Stops every process in `pids` (TERM, then waits for each) and removes $tmp: the end of
# every bench script's EXIT trap.
stop_processes() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
