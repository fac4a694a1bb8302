# shellcheck shell=bash disable=SC2034,SC2154
# The workloads of scripts/bench.sh (sourced, never run). Each runs one load against one
# server's endpoint, divides the work by the CPU time that server used meanwhile, and
# records one line (record, in lib.sh). Every run is bounded by `timeout`.
#
# Needs: $tmp, $bin, pin_load (array), and the durations set by bench.sh.

# workload NAME -> "endpoint|unit|better(high/low)|target ratio|absolute target|title"
declare -A workload_info=(
  [ka-tls]="tls|req/CPU-s|high|1.5||keep-alive 1 KiB POST, TLS 1.3, $wrk_connections conns"
  [ka-plain]="plain|req/CPU-s|high|1.5||keep-alive 1 KiB POST, plain, $wrk_connections conns"
  [hs-ecdsa]="tls|hs/CPU-s|high|2.0||full handshakes TLS 1.3, ECDSA P-256"
  [hs-rsa]="rsa|hs/CPU-s|high|1.0||full handshakes TLS 1.2, RSA-2048"
  [hs-mtls]="mtls|hs/CPU-s|high|2.5||full handshakes TLS 1.3 + client cert"
  [up-tls]="tls|MB/CPU-s|high|1.5||chunked upload $stream_mib MiB, TLS 1.3"
  [up-plain]="plain|MB/CPU-s|high|1.5||chunked upload $stream_mib MiB, plain"
  [grpc-tls]="tls|streams/CPU-s|high|1.5||gRPC unary calls, TLS 1.3 h2 ($grpc_clients conns x $grpc_streams streams)"
  [grpc-rate]="tls|streams/CPU-s|high|1.5||gRPC unary calls at the same rate, $grpc_rate/s, TLS 1.3 h2 ($grpc_clients conns)"
  [lat-tls]="tls|ms|low|1.0||keep-alive 1 KiB POST, TLS 1.3, $wrk_connections conns, open loop"
  [lat-plain]="plain|ms|low|1.0||keep-alive 1 KiB POST, plain, $wrk_connections conns, open loop"
  [mem-tls]="tls|KiB/conn|low||3|memory per idle TLS conn (after one request)"
  [mem-mtls]="mtls|KiB/conn|low||5|memory per idle mTLS conn (after one request)"
  [mem-h2]="tls|KiB/conn|low||8|memory per idle HTTP/2 TLS conn (after one request)"
)
# grpc-rate: the closed loop of grpc-tls gives each server the load it can take, and how
# many calls a server finds per wake-up changes its CPU per call; at one fixed rate that
# every server sustains (nginx the slowest), CPU per call is compared at the same load.
load_workloads=(ka-tls ka-plain hs-ecdsa hs-rsa hs-mtls up-tls up-plain grpc-tls grpc-rate)
memory_workloads=(mem-tls mem-mtls mem-h2)
# Run after the load workloads of a round: their rate comes from the closed-loop figures.
latency_workloads=(lat-tls lat-plain)
# The closed-loop workload whose wall rates set each latency workload's rate.
declare -A rate_source=([lat-tls]=ka-tls [lat-plain]=ka-plain)

endpoint_of() { echo "${workload_info[$1]%%|*}"; }

# to_ms VALUE: wrk's "812.00us", "1.23ms", "1.02s" in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.2f", n }'
}

# measure SERVER ENDPOINT CMD...: runs CMD, leaves its output in $out, the server's CPU
# seconds in $cpu and the milliseconds it waited for a CPU while runnable in $runq_ms.
measure() {
  local server=$1 endpoint=$2
  shift 2
  local c0 c1 q0 q1
  local measured
  read -r -a measured <<<"$(cpu_pids "$server" "$endpoint")"
  c0=$(cpu_ns "${measured[@]}") q0=$(runq_ns "${measured[@]}")
  out=$("${pin_load[@]}" "$@" 2>&1) || true
  c1=$(cpu_ns "${measured[@]}") q1=$(runq_ns "${measured[@]}")
  cpu=$(calc "($c1 - $c0) / 1e9" 3)
  runq_ms=$(calc "($q1 - $q0) / 1e6")
}
per_cpu() { [ -n "$1" ] && [ "$1" != 0 ] && awk "BEGIN { exit !($cpu > 0) }" && calc "$1 / $cpu" "${2:-0}"; }

run_wrk() {
  local name=$1 server=$2 scheme=$3
  local url=$scheme://${addr[$server.$(endpoint_of "$name")]}/intake/v2/events
  measure "$server" "$(endpoint_of "$name")" timeout $((wrk_seconds + 20)) wrk -t1 \
    -c"$wrk_connections" -d"${wrk_seconds}s" --latency -s "$tmp/post.lua" "$url"
  local requests wall errors sockerr p50 p99
  requests=$(grep -oE '[0-9]+ requests in' <<<"$out" | awk '{print $1}' || true)
  wall=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  errors=$(awk -F': *' '/Non-2xx or 3xx responses/ {print $2}' <<<"$out")
  sockerr=$(grep -oE 'Socket errors:.*' <<<"$out" || true)
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  record "$name" "$server" "$(per_cpu "$requests")" "$p50" "$p99" \
    "wall ${wall:-?} req/s, CPU ${cpu}s, non-2xx ${errors:-0}${sockerr:+, $sockerr}"
}

run_handshakes() {
  local name=$1 server=$2
  shift 2
  measure "$server" "$(endpoint_of "$name")" timeout $((hs_seconds + 30)) \
    "$bin/apm-bench-client" handshake --connect "${addr[$server.$(endpoint_of "$name")]}" \
    --duration "$hs_seconds" --concurrency "$hs_concurrency" "$@"
  local count failed seconds
  count=$(field handshakes "$out") failed=$(field failed "$out") seconds=$(field seconds "$out")
  record "$name" "$server" "$(per_cpu "$count")" - - \
    "wall $(calc "${count:-0} / ${seconds:-1}") hs/s, CPU ${cpu}s, failed ${failed:-?}, no ticket $(field no_ticket "$out")"
}

run_upload() {
  local name=$1 server=$2
  shift 2
  measure "$server" "$(endpoint_of "$name")" timeout 120 "$bin/apm-bench-client" upload \
    --connect "${addr[$server.$(endpoint_of "$name")]}" --chunked \
    --bytes $((stream_mib << 20)) --requests 1 "$@"
  local bytes seconds non2xx
  bytes=$(field bytes "$out") seconds=$(field seconds "$out") non2xx=$(field non2xx "$out")
  record "$name" "$server" "$(per_cpu "$(calc "${bytes:-0} / 1e6" 3)")" - - \
    "wall $(calc "${bytes:-0} / ${seconds:-1} / 1e6") MB/s, CPU ${cpu}s, non-2xx ${non2xx:-?}, $(field cipher "$out")"
}

# run_grpc NAME SERVER [H2LOAD_ARGS...]
run_grpc() {
  local name=$1 server=$2 log=$tmp/h2load.log
  shift 2
  rm -f "$log"
  measure "$server" tls timeout $((grpc_seconds + 20)) h2load -D "$grpc_seconds" -t 1 "$@" \
    -c "$grpc_clients" -m "$grpc_streams" -H 'content-type: application/grpc' \
    -H 'te: trailers' -d "$tmp/grpc.bin" --log-file="$log" \
    "https://${addr[$server.tls]}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
  local ok failed p50='' p99='' protocol
  ok=$(sed -n 's/^requests:.* \([0-9]*\) succeeded.*/\1/p' <<<"$out")
  failed=$(sed -n 's/^requests:.* \([0-9]*\) failed.*/\1/p' <<<"$out")
  protocol=$(sed -n 's/^Application protocol: //p' <<<"$out")
  if [ -s "$log" ]; then
    # Nearest-rank percentiles of the per-request durations (microseconds, column 3).
    read -r p50 p99 < <(awk '{print $3}' "$log" | sort -n | awk '
      function at(p, i) { i = int(NR * p); if (i < NR * p) i++; return v[i < 1 ? 1 : i] / 1000 }
      { v[NR] = $1 } END { if (NR) printf "%.2f %.2f\n", at(0.5), at(0.99) }')
  fi
  record "$name" "$server" "$(per_cpu "$ok")" "$p50" "$p99" \
    "$(grep -oE '[0-9.]+ req/s' <<<"$out" | head -1 || true) wall, CPU ${cpu}s, failed ${failed:-?}, ${protocol:-no ALPN}"
}

# latency_rate NAME SERVERS: each server's request rate for latency workload NAME in this
# round, when SERVERS servers are loaded at once: $fixed_rate if set, else rate_percent %
# of the slowest server's closed-loop wall rate in its closed-loop twin, shared among the
# SERVERS (they share CPU 0, so together they get that load). Each server's wall rate is
# its median over this and the earlier rounds (one run that the shared machine stalled
# must not set the rate). Empty when there is no figure, or under 100 req/s.
latency_rate() {
  if [ -n "${fixed_rate:-}" ]; then
    echo "$fixed_rate"
    return
  fi
  awk -F'\t' -v r="$round" -v w="${rate_source[$1]}" -v pct="$rate_percent" -v share="${2:-1}" '
    $1 <= r && $2 == w && match($7, /wall [0-9]+ req\/s/) {
      n[$3]++
      v[$3, n[$3]] = substr($7, RSTART + 5, RLENGTH - 11) + 0
    }
    END {
      for (s in n) {
        for (i = 1; i <= n[s]; i++) a[i] = v[s, i]
        for (i = 2; i <= n[s]; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
          t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
        }
        m = n[s] % 2 ? a[(n[s] + 1) / 2] : (a[n[s] / 2] + a[n[s] / 2 + 1]) / 2
        if (min == "" || m < min) min = m
      }
      if (min != "" && min * pct / 100 / share >= 100) printf "%d\n", min * pct / 100 / share
    }' "$tmp/results.tsv"
}

# run_rates_together NAME SERVER...: the servers under the same open-loop load at the same
# moment: one apm-bench-client rate run per server, all started together, each at the
# same rate over $wrk_connections connections, so a stall of the shared machine falls on
# all of them alike. The figure is the p99 latency counted from each request's scheduled
# send time (a stall is charged to every request it delayed). Each server's CPU time and
# its wait for a CPU are its own; the rate achieved and the client's own lateness say
# whether the load was what was asked for.
run_rates_together() {
  local name=$1 s endpoint rate
  shift
  endpoint=$(endpoint_of "$name")
  rate=$(latency_rate "$name" $#)
  if [ -z "$rate" ]; then
    for s in "$@"; do
      record "$name" "$s" '' - - "no rate: ${rate_source[$name]} has no usable wall rate yet"
    done
    return
  fi
  local extra=()
  [ "$endpoint" = tls ] && extra=(--tls)
  local -A c0=() q0=() rate_client=() measured=()
  for s in "$@"; do
    measured[$s]=$(cpu_pids "$s" "$endpoint")
    # shellcheck disable=SC2086 # one PID or two
    c0[$s]=$(cpu_ns ${measured[$s]}) q0[$s]=$(runq_ns ${measured[$s]})
  done
  for s in "$@"; do
    "${pin_load[@]}" timeout $((rate_seconds * 2 + 60)) "$bin/apm-bench-client" rate \
      --connect "${addr[$s.$endpoint]}" --rate "$rate" --duration "$rate_seconds" \
      --concurrency "$wrk_connections" "${extra[@]}" >"$tmp/rate-$s.out" 2>&1 &
    rate_client[$s]=$!
    pids+=($!)
  done
  for s in "$@"; do wait "${rate_client[$s]}" || true; done
  for s in "$@"; do
    # shellcheck disable=SC2086
    cpu=$(calc "($(cpu_ns ${measured[$s]}) - ${c0[$s]}) / 1e9" 3)
    # shellcheck disable=SC2086
    runq_ms=$(calc "($(runq_ns ${measured[$s]}) - ${q0[$s]}) / 1e6")
    out=$(cat "$tmp/rate-$s.out")
    record "$name" "$s" "$(field p99_ms "$out")" "$(field p50_ms "$out")" "$(field p99_ms "$out")" \
      "rate $rate/s, achieved $(field achieved "$out")/s, p90/p99.9/max $(field p90_ms "$out")/$(field p999_ms "$out")/$(field max_ms "$out") ms, client late p99 $(field client_lag_p99_ms "$out") ms, CPU ${cpu}s, waited for a CPU ${runq_ms} ms, errors $(field errors "$out"), unanswered $(field unanswered "$out"), non-2xx $(field non2xx "$out")"
  done
}

# run_idle NAME SERVER CLIENT-ARGS...: a fresh server, 20 warm-up connections, then
# idle_count connections that each served one request and stay open; the figure is the
# serving process's RSS growth per connection.
run_idle() {
  local name=$1 server=$2 endpoint
  shift 2
  endpoint=$(endpoint_of "$name")
  start_server "$server" || {
    record "$name" "$server" '' - - "did not start"
    return
  }
  local target=${addr[$server.$endpoint]} pid
  pid=$(mem_pid "$server" "$endpoint")
  "${pin_load[@]}" timeout 60 "$bin/apm-bench-client" idle --connect "$target" --count 20 \
    --request --hold 0 "$@" >/dev/null 2>&1 || true
  sleep 0.5
  local before after='' ready=$tmp/idle.ready value=''
  rm -f "$ready"
  before=$(rss_kib "$pid")
  "${pin_load[@]}" timeout 200 "$bin/apm-bench-client" idle --connect "$target" \
    --count "$idle_count" --concurrency 100 --request --hold 120 --ready-file "$ready" "$@" \
    >"$tmp/idle.out" 2>&1 &
  local client=$!
  pids+=("$client")
  if wait_file "$ready" 150; then
    sleep 1  # let the server finish whatever the last responses started
    after=$(rss_kib "$pid")
  fi
  kill -TERM "$client" 2>/dev/null || true
  wait "$client" 2>/dev/null || true
  out=$(cat "$tmp/idle.out")
  local established still_open non2xx
  established=$(field established "$out") still_open=$(field still_open "$out")
  non2xx=$(field non2xx "$out")
  if [ -n "$after" ] && [ -n "$established" ] && [ "$established" -gt 0 ]; then
    value=$(calc "($after - $before) / $established" 2)
  fi
  record "$name" "$server" "$value" - - \
    "RSS ${before:-?} -> ${after:-?} KiB, ${established:-?} conns, still open ${still_open:-?}, non-2xx ${non2xx:-?}"
  stop_server "$server"
}

# run_workload NAME SERVER
run_workload() {
  case "$1" in
    ka-tls) run_wrk "$1" "$2" https ;;
    ka-plain) run_wrk "$1" "$2" http ;;
    hs-ecdsa) run_handshakes "$1" "$2" ;;
    hs-rsa) run_handshakes "$1" "$2" --tls12 ;;
    hs-mtls) run_handshakes "$1" "$2" --cert "$client_crt" --key "$client_key" ;;
    up-tls) run_upload "$1" "$2" --tls ;;
    up-plain) run_upload "$1" "$2" ;;
    grpc-tls) run_grpc "$1" "$2" ;;
    grpc-rate) run_grpc "$1" "$2" --rps $((grpc_rate / grpc_clients)) ;;
    mem-tls) run_idle "$1" "$2" --tls ;;
    mem-mtls) run_idle "$1" "$2" --tls --cert "$client_crt" --key "$client_key" ;;
    mem-h2) run_idle "$1" "$2" --tls --h2 ;;
  esac
}
