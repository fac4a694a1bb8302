# shellcheck shell=bash disable=SC2034,SC2154
# apm-tls-proxy against itself (sourced by scripts/bench.sh, never run): issue 12 items 4
# and 5. In each round, one worker (proxy), two workers (proxy_w2: workers = 2, still
# pinned with the others, so the figure is the cost of two loops per CPU-second, not a
# speed-up) and the access log on (proxy_log: log.access to a file) serve the same
# keep-alive loads in rotating order; the idle-memory workload runs for one and two
# workers. For two workers, apm_tls_proxy_worker_connections_accepted_total shows how
# SO_REUSEPORT spread the load's connections. Results go to variants.tsv.
#
# Needs: $tmp and what servers.sh and workloads.sh need.

variant_servers=(proxy proxy_w2 proxy_log)
variant_load=(ka-tls ka-plain)
variant_memory=(mem-tls)
declare -A variant_label=([proxy]="1 worker" [proxy_w2]="2 workers" [proxy_log]="access log on")

start_proxy_w2() { start_proxy_as proxy_w2 2 off plain tls; }
start_proxy_log() {
  start_proxy_as proxy_log 1 "$tmp/access-log/access.log" plain tls
}

# worker_accepts SERVER ENDPOINT: "N0 N1 ..." from the per-worker metric (empty if none).
worker_accepts() {
  local a=${admin[$1.$2]:-}
  [ -n "$a" ] || return 0
  curl -s --max-time 5 "http://$a/metrics" |
    awk '/^apm_tls_proxy_worker_connections_accepted_total\{/ {printf "%s ", $2}'
}

# run_spread WORKLOAD SERVER: runs the workload and records, as workload "spread-WORKLOAD",
# the connections each worker accepted meanwhile; the figure is the smallest share over
# the largest (1.00 = perfectly even).
run_spread() {
  local name=$1 server=$2 endpoint before after
  endpoint=$(endpoint_of "$name")
  read -r -a before <<<"$(worker_accepts "$server" "$endpoint")"
  run_workload "$name" "$server"
  read -r -a after <<<"$(worker_accepts "$server" "$endpoint")"
  [ ${#after[@]} -gt 1 ] && [ ${#after[@]} = ${#before[@]} ] || return 0
  local i counts=() min='' max=0 n
  for i in "${!after[@]}"; do
    n=$((after[i] - before[i]))
    counts+=("$n")
    [ -z "$min" ] || [ "$n" -lt "$min" ] && min=$n
    [ "$n" -gt "$max" ] && max=$n
  done
  local value=''
  [ "$max" -gt 0 ] && value=$(calc "$min / $max" 2)
  record "spread-$name" "$server" "$value" - - "connections accepted by worker: ${counts[*]}"
}

# run_variants ROUND: one round of the variant comparison.
run_variants() {
  local round=$1 s w order work
  mapfile -t order < <(rotate $((round - 1)) "${variant_servers[@]}")
  mapfile -t work < <(rotate $((round - 1)) "${variant_load[@]}")
  echo "-- variants, round $round: ${order[*]}"
  mkdir -p "$tmp/access-log"
  for s in "${order[@]}"; do start_server "$s" || true; done
  for w in "${work[@]}"; do
    for s in "${order[@]}"; do
      if [ "$s" = proxy_w2 ]; then run_spread "$w" "$s"; else run_workload "$w" "$s"; fi
      after_run "$s"
    done
  done
  for s in "${order[@]}"; do stop_server "$s"; done
  if [ -s "$tmp/access-log/access.log" ]; then
    echo "   access log: $(wc -l <"$tmp/access-log/access.log") lines, $(($(stat -c %s "$tmp/access-log/access.log") / 1024)) KiB"
  fi
  rm -rf "$tmp/access-log"
  if [ "$round" -le "$memory_rounds" ]; then
    for w in "${variant_memory[@]}"; do
      for s in proxy proxy_w2; do run_workload "$w" "$s"; done
    done
  fi
}
