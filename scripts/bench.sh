#!/usr/bin/env bash
# Benchmarks apm-tls-proxy on this machine and prints one line per figure with its target
# (issues 2 and 3), then a summary table. Figures are per CPU-second of the proxy process
# (utime + stime from /proc/PID/stat), not per wall second: the machine is shared, so wall
# rates are printed only as context. See docs/benchmarks.md.
#
# Usage: scripts/bench.sh [--quick] [--no-build]
#   --quick     shorter runs and fewer connections (about a minute)
#   --no-build  use build/release as it is (default: scripts/build.sh release first)
#
# Loopback only. Every process it starts is stopped by PID on exit; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0
build=1
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    -h | --help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "bench: unknown argument $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

if [ "$quick" = 1 ]; then
  wrk_seconds=3 hs_seconds=3 stream_mib=64 stream_requests=2 idle_count=1000
else
  wrk_seconds=10 hs_seconds=8 stream_mib=256 stream_requests=4 idle_count=5000
fi
wrk_connections=50
hs_concurrency=32

# ---- build and tools ----
if [ "$build" = 1 ]; then
  scripts/build.sh release >/dev/null
fi
bin=$root/build/release
for b in apm-tls-proxy apm-intake-demo apm-bench-client; do
  if [ ! -x "$bin/$b" ]; then
    echo "bench: $bin/$b is missing; run scripts/build.sh release" >&2
    exit 1
  fi
done
if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk (Debian package)" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 || {
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends wrk >/dev/null
  }
fi

hz=$(getconf CLK_TCK)
pin_proxy=() pin_load=()
if [ "$(nproc)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
  pin_proxy=(taskset -c 0) pin_load=(taskset -c 1)
fi

# The idle-connection figures need about two descriptors per connection in this shell's
# children (the client's and the proxy's ends).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
if [ "$fd_limit" != unlimited ] && [ $((idle_count + 256)) -gt "$fd_limit" ]; then
  idle_count=$((fd_limit - 256))
fi

# ---- processes, stopped by PID on every exit path ----
tmp=$(mktemp -d /tmp/apm-bench.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_file PATH SECONDS: polls until PATH exists.
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
# cpu_ns PID: CPU time of every thread of PID so far, in nanoseconds. schedstat counts
# exact run time; utime + stime from /proc/PID/stat (clock ticks) is the fallback.
cpu_ns() {
  local t
  t=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {if (NR) printf "%.0f", s}')
  if [ -z "$t" ]; then
    t=$(awk -v hz="$hz" '{printf "%.0f", ($14 + $15) * 1e9 / hz}' "/proc/$1/stat" 2>/dev/null)
  fi
  echo "${t:-0}"
}
# cpu_seconds BEFORE_NS AFTER_NS
cpu_seconds() { calc "($2 - $1) / 1e9" 3; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# field KEY TEXT: the value of KEY=VALUE in a client's output line.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -1; }
calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }

# ---- results ----
summary=()
# report NAME VALUE UNIT TARGET (">=N" or "<=N") DETAIL
report() {
  local name=$1 value=$2 unit=$3 target=$4 detail=$5 verdict
  local op=${target:0:2} goal=${target:2}
  if [ -z "$value" ]; then
    verdict=FAILED value=-
  elif awk "BEGIN { exit !($value $op $goal) }"; then
    verdict=ok
  else
    verdict=BELOW
    [ "$op" = "<=" ] && verdict=ABOVE
  fi
  printf '%-44s %12s %-10s (target %s %s) %-6s %s\n' "$name" "$value" "$unit" "$op" "$goal" \
    "$verdict" "$detail"
  summary+=("$(printf '%-44s %12s %-10s %4s %-10s %s' "$name" "$value" "$unit" "$op" "$goal" \
    "$verdict")")
}

# ---- certificates, configs, upstream ----
"$bin/apm-tls-proxy" certutil ca --out "$tmp/pki" >/dev/null
"$bin/apm-tls-proxy" certutil cert --ca-cert "$tmp/pki/ca.crt" --ca-key "$tmp/pki/ca.key" \
  --name localhost --out "$tmp/pki" >/dev/null
cert=$tmp/pki/localhost/localhost.crt key=$tmp/pki/localhost/localhost.key

"${pin_load[@]}" "$bin/apm-intake-demo" --listen 127.0.0.1:0 --quiet \
  --ready-file "$tmp/demo.ready" 2>"$tmp/demo.log" &
pids+=($!)
wait_file "$tmp/demo.ready" 10
upstream=$(sed -n 's/^listen=//p' "$tmp/demo.ready")

# Long timeouts: idle connections must stay open while their memory is measured.
server_table="[server]
host = \"127.0.0.1:0\"
workers = 1
idle_timeout = \"120s\"
request_header_timeout = \"120s\"
tls_handshake_timeout = \"120s\"

[upstream]
url = \"http://$upstream\"

[log]
level = \"warn\""
printf '%s\n' "$server_table" >"$tmp/plain.toml"
printf '%s\n\n[ssl]\ncertificate = "%s"\nkey = "%s"\n' "$server_table" "$cert" "$key" \
  >"$tmp/tls.toml"

cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = string.rep("x", 1023) .. "\n"
wrk.headers["Content-Type"] = "application/x-ndjson"
EOF

proxy_pid='' proxy_addr=''
proxy_count=0
# start_proxy plain|tls: a fresh proxy pinned to CPU 0; sets proxy_pid and proxy_addr.
start_proxy() {
  proxy_count=$((proxy_count + 1))
  local ready=$tmp/proxy$proxy_count.ready
  "${pin_proxy[@]}" "$bin/apm-tls-proxy" run --config "$tmp/$1.toml" --ready-file "$ready" \
    2>>"$tmp/proxy.log" &
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_file "$ready" 10
  proxy_addr=$(sed -n 's/^listen=//p' "$ready")
}
stop_proxy() {
  kill -TERM "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
}
# proxy_survived MODE: after a measurement. A proxy that died is a finding, not noise:
# say how it ended, show its last log lines, and start a fresh one for what follows.
proxy_survived() {
  kill -0 "$proxy_pid" 2>/dev/null && return 0
  local status=0
  wait "$proxy_pid" 2>/dev/null || status=$?
  echo "bench: the proxy (pid $proxy_pid) died during the last measurement:" \
    "exit status $status$([ "$status" -gt 128 ] && echo " (signal $((status - 128)))")" >&2
  tail -5 "$tmp/proxy.log" | sed 's/^/  proxy: /' >&2
  start_proxy "$1"
  return 1
}

# run_wrk SCHEME NAME TARGET MODE: keep-alive 1 KiB POSTs, figure per proxy CPU-second.
run_wrk() {
  local url=$1://$proxy_addr/intake/v2/events
  "${pin_load[@]}" wrk -t1 -c"$wrk_connections" -d1s -s "$tmp/post.lua" "$url" >/dev/null || true
  local c0 c1 out
  c0=$(cpu_ns "$proxy_pid")
  out=$("${pin_load[@]}" timeout $((wrk_seconds + 30)) wrk -t1 -c"$wrk_connections" \
    -d"${wrk_seconds}s" -s "$tmp/post.lua" "$url") || true
  c1=$(cpu_ns "$proxy_pid")
  local requests wall errors sockerr cpu
  requests=$(grep -oE '[0-9]+ requests in' <<<"$out" | awk '{print $1}')
  wall=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  errors=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' <<<"$out")
  sockerr=$(grep -oE 'Socket errors:.*' <<<"$out" || true)
  cpu=$(cpu_seconds "$c0" "$c1")
  local value=''
  proxy_survived "$4" || requests=''
  if [ -n "$requests" ] && [ "$c1" -gt "$c0" ]; then
    value=$(calc "$requests / $cpu")
  fi
  report "$2" "$value" "req/CPU-s" "$3" \
    "wall ${wall:-?} req/s, proxy CPU ${cpu}s, errors ${errors:-0}${sockerr:+, $sockerr}"
}

# run_stream MODE NAME TARGET_GBPS CLIENT-ARGS...: bytes through the proxy per proxy
# CPU-second.
run_stream() {
  local mode=$1 name=$2 target=$3
  shift 3
  local c0 c1 out value='' cpu
  c0=$(cpu_ns "$proxy_pid")
  out=$("${pin_load[@]}" timeout 120 "$bin/apm-bench-client" "$@" --connect "$proxy_addr" \
    --bytes $((stream_mib << 20)) --requests "$stream_requests") || true
  c1=$(cpu_ns "$proxy_pid")
  cpu=$(cpu_seconds "$c0" "$c1")
  local bytes seconds non2xx
  bytes=$(field bytes "$out") seconds=$(field seconds "$out") non2xx=$(field non2xx "$out")
  proxy_survived "$mode" || bytes=''
  if [ -n "$bytes" ] && [ "$bytes" -gt 0 ] && [ "$c1" -gt "$c0" ]; then
    value=$(calc "$bytes / $cpu / 1e9" 2)
  fi
  report "$name" "$value" "GB/CPU-s" ">=$target" \
    "wall $(calc "${bytes:-0} / ${seconds:-1} / 1e9" 2) GB/s, $stream_requests x $stream_mib MiB, proxy CPU ${cpu}s, non-2xx ${non2xx:-?}"
}

# run_handshakes NAME TARGET [--resume]
run_handshakes() {
  local name=$1 target=$2
  shift 2
  local c0 c1 out value='' cpu
  c0=$(cpu_ns "$proxy_pid")
  out=$("${pin_load[@]}" timeout $((hs_seconds + 30)) "$bin/apm-bench-client" handshake \
    --connect "$proxy_addr" --duration "$hs_seconds" --concurrency "$hs_concurrency" "$@") || true
  c1=$(cpu_ns "$proxy_pid")
  cpu=$(cpu_seconds "$c0" "$c1")
  local count resumed failed seconds
  count=$(field handshakes "$out") resumed=$(field resumed "$out")
  failed=$(field failed "$out") seconds=$(field seconds "$out")
  # A resumed figure counts only handshakes that really resumed.
  [ "${1:-}" = --resume ] && count=$resumed
  proxy_survived tls || count=''
  if [ -n "$count" ] && [ "$count" -gt 0 ] && [ "$c1" -gt "$c0" ]; then
    value=$(calc "$count / $cpu")
  fi
  report "$name" "$value" "hs/CPU-s" "$target" \
    "wall $(calc "${count:-0} / ${seconds:-1}") hs/s, resumed ${resumed:-?}, failed ${failed:-?}, proxy CPU ${cpu}s"
}

# run_idle NAME MODE(plain|tls) TARGET_BYTES CLIENT-ARGS...: a fresh proxy, warmed up, then
# idle_count connections held open; figure = RSS growth / connections.
run_idle() {
  local name=$1 mode=$2 target=$3
  shift 3
  start_proxy "$mode"
  "${pin_load[@]}" timeout 60 "$bin/apm-bench-client" idle --connect "$proxy_addr" --count 20 \
    --request --hold 0 "$@" >/dev/null || true
  sleep 0.5
  local before after ready=$tmp/idle$proxy_count.ready out value=''
  before=$(rss_kib "$proxy_pid")
  "${pin_load[@]}" timeout 200 "$bin/apm-bench-client" idle --connect "$proxy_addr" \
    --count "$idle_count" --concurrency 100 --hold 120 --ready-file "$ready" "$@" \
    >"$tmp/idle.out" &
  local client=$!
  pids+=("$client")
  if wait_file "$ready" 150; then
    sleep 1  # let the proxy finish whatever the last responses started
    after=$(rss_kib "$proxy_pid" 2>/dev/null || true)
  fi
  kill -TERM "$client" 2>/dev/null || true
  wait "$client" 2>/dev/null || true
  out=$(cat "$tmp/idle.out")
  local established still_open
  established=$(field established "$out") still_open=$(field still_open "$out")
  if [ -n "${after:-}" ] && [ -n "$established" ] && [ "$established" -gt 0 ]; then
    value=$(calc "($after - $before) * 1024 / $established")
  fi
  proxy_survived "$mode" || value=''
  report "$name" "$value" "B/conn" "<=$target" \
    "RSS ${before} -> ${after:-?} KiB, ${established:-?} connections, still open ${still_open:-?}"
  stop_proxy
}

echo "apm-tls-proxy benchmark: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')," \
  "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "pinning: ${pin_proxy[*]:-off}$([ "$quick" = 1 ] && echo ', --quick')"
echo "Figures are per CPU-second of the proxy process (workers = 1); wall rates are context."
echo

# 1-2: plain HTTP.
start_proxy plain
run_wrk http "plain keep-alive 1 KiB POST" ">=65000" plain
run_stream plain "plain upload, Content-Length" 2 upload
run_stream plain "plain upload, chunked" 2 upload --chunked
run_stream plain "plain download, Content-Length" 2 download
stop_proxy

# 3-5: TLS 1.3.
start_proxy tls
# What wrk (OpenSSL) negotiates: "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384".
version=$(timeout 10 openssl s_client -connect "$proxy_addr" -servername localhost \
  </dev/null 2>/dev/null | sed -n 's/^New, \([^,]*\), Cipher is \(.*\)/\1 \2/p' | head -1 || true)
echo "(wrk and openssl s_client negotiate ${version:-an unknown TLS version}; apm-bench-client: TLSv1.3 AES-128-GCM)"
run_wrk https "TLS 1.3 keep-alive 1 KiB POST" ">=48000" tls
run_handshakes "TLS 1.3 full handshake, ECDSA P-256" ">=6800"
run_handshakes "TLS 1.3 resumed handshake (ticket)" ">=6800" --resume
run_stream tls "TLS upload, Content-Length" 1.5 upload --tls
run_stream tls "TLS download, Content-Length" 1.5 download --tls
stop_proxy

# 6: memory per idle connection, each on a fresh proxy.
run_idle "idle TLS conn, after handshake" tls 4096 --tls
run_idle "idle TLS conn, after one request" tls 4096 --tls --request
run_idle "idle plain conn, after one request" plain 4096 --request

if [ -s "$tmp/proxy.log" ]; then
  echo
  echo "proxy stderr (last 5 of $(wc -l <"$tmp/proxy.log") lines):"
  tail -5 "$tmp/proxy.log"
fi
echo
echo "Summary ($(nproc) CPUs, proxy pinned: ${pin_proxy[*]:-no}):"
printf '%-44s %12s %-10s %-15s %s\n' figure measured unit target verdict
for line in "${summary[@]}"; do
  echo "$line"
done
