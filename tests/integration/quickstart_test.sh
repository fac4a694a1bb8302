#!/usr/bin/env bash
# Runs scripts/quickstart.sh --smoke against prebuilt binaries (QUICKSTART_BIN_DIR) in a
# temporary state directory on free ports, and checks what a new user relies on:
#   1. it exits 0 after a real intake request through the proxy answered 202, and the
#      request reached the intake server over the proxy (X-Forwarded-Proto: https); with
#      Node.js and the clients of tests/clients installed, its OTLP/gRPC export (traces,
#      metrics, logs) succeeded and reached the intake server over h2c; without them it
#      says it skipped the export;
#   2. nothing it started is still running, and its ports are free again;
#   3. a second run reuses the certificates byte for byte;
#   4. a busy port fails with exit 1 and a message naming the port and the variable.
# Usage: quickstart_test.sh PROXY_BINARY DEMO_BINARY   (registered in scripts.cmake)
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 PROXY_BINARY DEMO_BINARY" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/quickstart-test.XXXXXX")"
mkdir -p "$tmp/bin"
ln -s "$(realpath "$1")" "$tmp/bin/apm-tls-proxy"
ln -s "$(realpath "$2")" "$tmp/bin/apm-intake-demo"

blocker_pid=""
started_pids=()
# shellcheck disable=SC2317  # runs from the EXIT trap
cleanup() {
  local pid
  # Anything a failed run left behind, by the PIDs it reported (and our own blocker).
  for pid in "${started_pids[@]}" $blocker_pid; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  [ -z "$blocker_pid" ] || { wait "$blocker_pid" || true; } 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
ok() { printf 'ok: %s\n' "$*"; }
not_ok() {
  printf 'FAIL: %s\n' "$*"
  failures=$((failures + 1))
}
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds, else a failure.
check() {
  local what="$1"
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_ports: three consecutive free ports above 20000 into port, upstream_port, admin_port.
pick_ports() {
  local attempt base
  for ((attempt = 0; attempt < 50; attempt++)); do
    # Below the kernel's ephemeral range (32768 and up), where other tests bind port 0.
    base=$((20000 + (RANDOM % 600) * 20))
    if ! port_busy "$base" && ! port_busy $((base + 1)) && ! port_busy $((base + 2)); then
      port=$base
      upstream_port=$((base + 1))
      admin_port=$((base + 2))
      return 0
    fi
  done
  echo "no free ports found" >&2
  exit 1
}

# run_quickstart LOG: the smoke run in $tmp/state on the chosen ports; returns its status.
# Retries with other ports when another process took one between the pick and the bind.
run_quickstart() {
  local log="$1" status attempt
  for ((attempt = 0; attempt < 3; attempt++)); do
    status=0
    QUICKSTART_BIN_DIR="$tmp/bin" QUICKSTART_STATE_DIR="$tmp/state" \
      QUICKSTART_PORT="$port" QUICKSTART_UPSTREAM_PORT="$upstream_port" \
      QUICKSTART_ADMIN_PORT="$admin_port" \
      timeout -k 5 120 bash "$root/scripts/quickstart.sh" --smoke >"$log" 2>&1 || status=$?
    collect_pids "$log"
    if [ "$status" -ne 0 ] && grep -q 'already in use' "$log"; then
      pick_ports
      continue
    fi
    return "$status"
  done
  return "$status"
}

# reported_pids LOG: the PIDs the quick start printed as "Started NAME (pid N)", one a line.
reported_pids() { sed -n 's/^Started apm-[a-z-]* (pid \([0-9]*\)).*/\1/p' "$1"; }

collect_pids() {
  local pids
  mapfile -t pids < <(reported_pids "$1")
  started_pids+=("${pids[@]}")
}

# assert_stopped LOG: every PID the run reported has exited, and its ports are free.
assert_stopped() {
  local log="$1" pid pids
  mapfile -t pids < <(reported_pids "$log")
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      not_ok "pid $pid is still running after the quick start exited"
    fi
  done
  check "both started processes reported their PIDs (${#pids[@]} of 2) and are gone" \
    test "${#pids[@]}" -eq 2
  local p
  for p in "$port" "$upstream_port" "$admin_port"; do
    if port_busy "$p"; then not_ok "port $p still accepts connections"; fi
  done
}

show() {
  printf -- '--- %s ---\n' "$1"
  cat "$1"
  printf -- '---\n'
}

# 1 + 2: a first run creates certificates and passes the smoke request.
pick_ports
log1="$tmp/run1.log"
if run_quickstart "$log1"; then
  ok "first --smoke run exited 0"
else
  not_ok "first --smoke run exited $?"
  show "$log1"
fi
# curl negotiates HTTP/2 with the proxy (ALPN h2); the upstream hop stays HTTP/1.1.
check "the intake request got 202 through the proxy" grep -qE '^    < HTTP/(1\.1 202 Accepted|2 202)' "$log1"
check "a demo CA was created" grep -q '^Wrote the CA certificate' "$log1"
check "the agent settings name the CA file" \
  grep -q "ELASTIC_APM_SERVER_CA_CERT_FILE=$tmp/state/certs/ca.crt" "$log1"
record="$tmp/state/run/intake-demo-requests.ndjson"
if grep -q '"target":"/intake/v2/events"' "$record" 2>/dev/null &&
  grep -q '\["X-Forwarded-Proto","https"\]' "$record"; then
  ok "the intake server received the request from the proxy (X-Forwarded-Proto: https)"
else
  not_ok "the intake server did not record the proxied request"
fi
# The OTLP/gRPC export: required wherever the Node.js clients are installed (scripts/test.sh
# installs them), reported as skipped elsewhere.
check "the OpenTelemetry settings name the CA file" \
  grep -q "OTEL_EXPORTER_OTLP_CERTIFICATE=$tmp/state/certs/ca.crt" "$log1"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
  [ -f "$root/tests/clients/node_modules/@opentelemetry/exporter-trace-otlp-grpc/package.json" ]; then
  for signal in traces metrics logs; do
    check "the OTLP/gRPC $signal export succeeded through the proxy" \
      grep -q "^    {\"signal\":\"$signal\",\"ok\":true" "$log1"
  done
  service="opentelemetry.proto.collector.trace.v1.TraceService/Export"
  if grep "\"target\":\"/$service\"" "$record" 2>/dev/null | grep -q '"protocol":"h2c"' &&
    grep "\"target\":\"/$service\"" "$record" | grep -q '\["x-forwarded-proto","https"\]'; then
    ok "the intake server received the trace export over h2c from the proxy"
  else
    not_ok "the intake server did not record the trace export over h2c"
  fi
else
  check "without Node.js clients the run says it skipped the export" \
    grep -q '^==> Skipping the OTLP/gRPC export' "$log1"
fi
assert_stopped "$log1"

# 3: the second run reuses every certificate file unchanged.
sums_before="$(cd "$tmp/state/certs" && sha256sum ca.crt ca.key localhost/localhost.crt localhost/localhost.key)"
log2="$tmp/run2.log"
if run_quickstart "$log2"; then
  ok "second --smoke run exited 0"
else
  not_ok "second --smoke run exited $?"
  show "$log2"
fi
sums_after="$(cd "$tmp/state/certs" && sha256sum ca.crt ca.key localhost/localhost.crt localhost/localhost.key)"
check "the second run says it reuses the CA" grep -q '^Reusing the demo CA' "$log2"
check "the certificate files are unchanged" test "$sums_before" = "$sums_after"
assert_stopped "$log2"

# 4: a busy proxy port is refused before anything starts.
"$tmp/bin/apm-intake-demo" --listen "127.0.0.1:$port" --ready-file "$tmp/blocker.ready" --quiet \
  >/dev/null 2>&1 &
blocker_pid=$!
for ((i = 0; i < 100; i++)); do
  [ -s "$tmp/blocker.ready" ] && break
  sleep 0.1
done
log3="$tmp/run3.log"
status=0
QUICKSTART_BIN_DIR="$tmp/bin" QUICKSTART_STATE_DIR="$tmp/state" QUICKSTART_PORT="$port" \
  QUICKSTART_UPSTREAM_PORT="$upstream_port" QUICKSTART_ADMIN_PORT="$admin_port" \
  timeout -k 5 60 bash "$root/scripts/quickstart.sh" --smoke >"$log3" 2>&1 || status=$?
collect_pids "$log3"
if [ "$status" -eq 1 ] && grep -q "port $port on 127.0.0.1, needed for the proxy (HTTPS), is already in use" "$log3" &&
  grep -q "QUICKSTART_PORT=" "$log3"; then
  ok "a busy port fails with exit 1 and says which port and variable"
else
  not_ok "busy port: expected exit 1 and a clear message, got exit $status"
  show "$log3"
fi
if grep -q '^Started apm-' "$log3"; then not_ok "processes were started despite the busy port"; fi
kill -TERM "$blocker_pid" 2>/dev/null || true
{ wait "$blocker_pid" || true; } 2>/dev/null
blocker_pid=""

if [ "$failures" -ne 0 ]; then
  printf '%d check(s) failed\n' "$failures"
  exit 1
fi
echo "all quick start checks passed"
