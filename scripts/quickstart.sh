#!/usr/bin/env bash
# The quick start: builds apm-tls-proxy, mints a demo CA and a localhost certificate,
# starts apm-intake-demo (a plain-HTTP and h2c stand-in for APM Server) and the proxy with
# TLS in front of it, sends one intake request and one OTLP/gRPC export through the proxy,
# prints the settings that point an APM agent or an OpenTelemetry SDK at it, and runs
# until Ctrl-C. Stops only the processes it started.
#
# Usage: scripts/quickstart.sh [--smoke]      (docs/getting-started.md)
#   --smoke                     send both, check the results, stop; exit 0 or 1
# Environment:
#   QUICKSTART_SMOKE=1          same as --smoke
#   QUICKSTART_BIN_DIR=DIR      use DIR/apm-tls-proxy and DIR/apm-intake-demo; skip the build
#   QUICKSTART_STATE_DIR=DIR    certificates, logs, generated config (default .state/quickstart;
#                               a relative path is taken from the repository root)
#   QUICKSTART_PORT=N           the proxy's HTTPS port (default 8200)
#   QUICKSTART_UPSTREAM_PORT=N  the intake server's plain-HTTP port (default 8201)
#   QUICKSTART_ADMIN_PORT=N     the proxy's admin port: /healthz, /readyz, /metrics (default 9900)
# Exit codes: 0 done, 1 failed, 2 bad usage.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# conf/quickstart.toml names its certificates relative to the working directory.
cd "$root"

usage() {
  sed -n '2,18s/^# \{0,1\}//p' "$root/scripts/quickstart.sh"
}

say() { printf '%s\n' "$*"; }
fail() {
  printf 'quickstart: %s\n' "$*" >&2
  exit 1
}

smoke="${QUICKSTART_SMOKE:-0}"
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      printf 'quickstart: unknown argument "%s"\n\n' "$arg" >&2
      usage >&2
      exit 2
      ;;
  esac
done
case "$smoke" in
  1 | true | yes) smoke=1 ;;
  *) smoke=0 ;;
esac

default_state="$root/.state/quickstart"
state="${QUICKSTART_STATE_DIR:-.state/quickstart}"
case "$state" in
  /*) ;;
  *) state="$root/$state" ;;
esac
state="${state%/}"
certs="$state/certs"
run="$state/run"

port="${QUICKSTART_PORT:-8200}"
upstream_port="${QUICKSTART_UPSTREAM_PORT:-8201}"
admin_port="${QUICKSTART_ADMIN_PORT:-9900}"
for pair in "QUICKSTART_PORT=$port" "QUICKSTART_UPSTREAM_PORT=$upstream_port" \
  "QUICKSTART_ADMIN_PORT=$admin_port"; do
  value="${pair#*=}"
  if ! [[ "$value" =~ ^[0-9]+$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
    printf 'quickstart: %s is not a port number (1 to 65535)\n' "$pair" >&2
    exit 2
  fi
done
if [ "$port" = "$upstream_port" ] || [ "$port" = "$admin_port" ] ||
  [ "$upstream_port" = "$admin_port" ]; then
  printf 'quickstart: the proxy, upstream and admin ports must differ (%s, %s, %s)\n' \
    "$port" "$upstream_port" "$admin_port" >&2
  exit 2
fi

# ---- processes we start, stopped by PID on every way out ----

demo_pid=""
proxy_pid=""
tail_pid=""
stopped=0

# Both functions run from the EXIT trap, which shellcheck cannot see (SC2317).
# shellcheck disable=SC2317
# stop_pid PID NAME: SIGTERM, up to 10 s to finish (the proxy drains), then SIGKILL; reap.
stop_pid() {
  local pid="$1" name="$2" i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "quickstart: $name (pid $pid) did not stop within 10 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  { wait "$pid" || true; } 2>/dev/null
  [ "$name" = "log follower" ] || say "Stopped $name (pid $pid)."
}

# shellcheck disable=SC2317
cleanup() {
  [ "$stopped" = 0 ] || return 0
  stopped=1
  stop_pid "$tail_pid" "log follower"
  stop_pid "$proxy_pid" "apm-tls-proxy"
  stop_pid "$demo_pid" "apm-intake-demo"
}
trap cleanup EXIT
trap 'say ""; say "Stopping."; exit 130' INT
trap 'exit 143' TERM

show_log() {
  local file="$1"
  if [ -s "$file" ]; then
    printf '\n--- last lines of %s ---\n' "$file" >&2
    tail -n 20 "$file" >&2
    printf -- '---\n' >&2
  fi
}

# ---- 1. binaries ----

if [ -n "${QUICKSTART_BIN_DIR:-}" ]; then
  bin="$(cd "$QUICKSTART_BIN_DIR" 2>/dev/null && pwd)" ||
    fail "QUICKSTART_BIN_DIR=$QUICKSTART_BIN_DIR is not a directory"
  say "==> Using the binaries in $bin (QUICKSTART_BIN_DIR; not building)"
else
  say "==> Building (scripts/build.sh release; installs Debian packages the first time)"
  "$root/scripts/build.sh" release
  bin="$root/build/release"
fi
proxy="$bin/apm-tls-proxy"
demo="$bin/apm-intake-demo"
for exe in "$proxy" "$demo"; do
  [ -x "$exe" ] || fail "$exe is missing or not executable"
done
command -v curl >/dev/null 2>&1 ||
  fail "curl is not installed (apt-get install curl, or run without QUICKSTART_BIN_DIR)"

# ---- 2. certificates: created once, reused on every later run ----

mkdir -p "$state"
say ""
say "==> Certificates in $certs"
ca_crt="$certs/ca.crt"
ca_key="$certs/ca.key"
leaf_crt="$certs/localhost/localhost.crt"
leaf_key="$certs/localhost/localhost.key"
start_over="remove $certs to start over with a new CA"
if [ -e "$ca_crt" ] && [ -e "$ca_key" ]; then
  say "Reusing the demo CA $ca_crt"
elif [ -e "$ca_crt" ] || [ -e "$ca_key" ]; then
  fail "only one of $ca_crt and $ca_key exists; $start_over"
elif [ -e "$leaf_crt" ] || [ -e "$leaf_key" ]; then
  fail "$leaf_crt exists but its CA is gone; $start_over"
else
  "$proxy" certutil ca --out "$certs" --ca-dn "CN=apm-tls-proxy quickstart CA"
fi
if [ -e "$leaf_crt" ] && [ -e "$leaf_key" ]; then
  say "Reusing the server certificate $leaf_crt"
elif [ -e "$leaf_crt" ] || [ -e "$leaf_key" ]; then
  fail "only one of $leaf_crt and $leaf_key exists; $start_over"
else
  # --name localhost gives the SANs localhost, 127.0.0.1 and ::1.
  "$proxy" certutil cert --ca-cert "$ca_crt" --ca-key "$ca_key" --name localhost --out "$certs"
fi
if command -v openssl >/dev/null 2>&1 &&
  ! openssl verify -CAfile "$ca_crt" "$leaf_crt" >/dev/null 2>&1; then
  openssl verify -CAfile "$ca_crt" "$leaf_crt" >&2 || true
  fail "$leaf_crt does not verify against $ca_crt (expired?); $start_over"
fi

# ---- 3. configuration ----

say ""
if [ "$state" = "$default_state" ] && [ "$port" = 8200 ] && [ "$upstream_port" = 8201 ] &&
  [ "$admin_port" = 9900 ]; then
  config="conf/quickstart.toml"
else
  # Other ports or another state directory: the same file with those values, absolute paths.
  config="$state/quickstart.toml"
  {
    say "# Generated by scripts/quickstart.sh from conf/quickstart.toml (rewritten on every run)."
    sed -e "s|^host = \"127.0.0.1:8200\"|host = \"127.0.0.1:$port\"|" \
      -e "s|^url = \"http://127.0.0.1:8201\"|url = \"http://127.0.0.1:$upstream_port\"|" \
      -e "s|^host = \"127.0.0.1:9900\"|host = \"127.0.0.1:$admin_port\"|" \
      -e "s|^certificate = \".state/quickstart/certs/|certificate = \"$certs/|" \
      -e "s|^key = \".state/quickstart/certs/|key = \"$certs/|" \
      "$root/conf/quickstart.toml"
  } >"$config"
  for expect in "host = \"127.0.0.1:$port\"" "url = \"http://127.0.0.1:$upstream_port\"" \
    "host = \"127.0.0.1:$admin_port\"" "certificate = \"$leaf_crt\"" "key = \"$leaf_key\""; do
    grep -qxF "$expect" "$config" ||
      fail "conf/quickstart.toml changed shape: cannot set '$expect' in $config; update scripts/quickstart.sh"
  done
fi
say "==> Checking $config (apm-tls-proxy check)"
if ! check_out="$("$proxy" check --config "$config" 2>&1)"; then
  printf '%s\n' "$check_out" >&2
  fail "$config is not valid"
fi
say "Valid."

# ---- 4. start the intake server and the proxy ----

# port_busy PORT: true when something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

busy_message() {
  local port="$1" what="$2" var="$3" who=""
  if command -v ss >/dev/null 2>&1; then
    who="$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(([^)]*))' | head -n 1 || true)"
  fi
  printf 'port %s on 127.0.0.1, needed for %s, is already in use%s.\n' \
    "$port" "$what" "${who:+ ($who)}"
  printf '  Stop that process (a quick start still running elsewhere?), or choose another port:\n'
  printf '  %s=%s scripts/quickstart.sh\n' "$var" "$((port + 1000))"
}

busy=""
port_busy "$port" && busy+="$(busy_message "$port" "the proxy (HTTPS)" QUICKSTART_PORT)"$'\n'
port_busy "$upstream_port" &&
  busy+="$(busy_message "$upstream_port" "the intake server" QUICKSTART_UPSTREAM_PORT)"$'\n'
port_busy "$admin_port" &&
  busy+="$(busy_message "$admin_port" "the proxy's admin endpoint" QUICKSTART_ADMIN_PORT)"$'\n'
if [ -n "$busy" ]; then
  printf 'quickstart: %s' "$busy" >&2
  exit 1
fi

mkdir -p "$run"
demo_ready="$run/intake-demo.ready"
proxy_ready="$run/proxy.ready"
demo_log="$run/intake-demo.log"
proxy_log="$run/proxy.log"
record="$run/intake-demo-requests.ndjson"
rm -f "$demo_ready" "$proxy_ready"
: >"$demo_log"
: >"$proxy_log"

# wait_ready PID FILE NAME LOG: until FILE has a listen= line; fail if PID exits or 30 s pass.
wait_ready() {
  local pid="$1" file="$2" name="$3" log="$4" i
  for ((i = 0; i < 300; i++)); do
    if [ -s "$file" ] && grep -q '^listen=' "$file"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log "$log"
      if grep -qi 'in use' "$log"; then
        fail "$name could not bind its port (see the log above; another process took it?)"
      fi
      fail "$name exited before it was ready (log above, full log: $log)"
    fi
    sleep 0.1
  done
  show_log "$log"
  fail "$name was not ready within 30 s (log above, full log: $log)"
}

say ""
say "==> Starting apm-intake-demo on http://127.0.0.1:$upstream_port (plain HTTP, answers like APM Server)"
"$demo" --listen "127.0.0.1:$upstream_port" --ready-file "$demo_ready" --record "$record" \
  >>"$demo_log" 2>&1 &
demo_pid=$!
wait_ready "$demo_pid" "$demo_ready" apm-intake-demo "$demo_log"
say "Started apm-intake-demo (pid $demo_pid), $(cat "$demo_ready")."

say "==> Starting apm-tls-proxy on https://127.0.0.1:$port with $config"
"$proxy" run --config "$config" --ready-file "$proxy_ready" >>"$proxy_log" 2>&1 &
proxy_pid=$!
wait_ready "$proxy_pid" "$proxy_ready" apm-tls-proxy "$proxy_log"
say "Started apm-tls-proxy (pid $proxy_pid), $(paste -sd " " "$proxy_ready")."

# ---- 5. one real intake request through the proxy ----

url="https://localhost:$port"
body="$run/intake-request.ndjson"
now_us="$(($(date +%s) * 1000000))"
cat >"$body" <<EOF
{"metadata":{"service":{"name":"quickstart","agent":{"name":"curl","version":"quickstart"},"language":{"name":"shell"}}}}
{"transaction":{"id":"0123456789abcdef","trace_id":"0123456789abcdef0123456789abcdef","name":"GET /quickstart","type":"request","duration":12.5,"timestamp":$now_us,"result":"HTTP 2xx","sampled":true,"span_count":{"started":0}}}
EOF
say ""
say "==> Sending one intake request through the proxy:"
say "    curl --cacert $ca_crt -H 'Content-Type: application/x-ndjson' --data-binary @$body $url/intake/v2/events"
head_file="$run/intake-response.head"
if ! status="$(curl -sS --max-time 15 --cacert "$ca_crt" -D "$head_file" -o /dev/null \
  -w '%{http_code}' -H 'Content-Type: application/x-ndjson' --data-binary "@$body" \
  "$url/intake/v2/events")"; then
  show_log "$proxy_log"
  fail "the request to $url/intake/v2/events failed (curl error above)"
fi
sed -e 's/\r$//' -e '/^$/d' -e 's/^/    < /' "$head_file"
if [ "$status" != 202 ]; then
  show_log "$proxy_log"
  show_log "$demo_log"
  fail "expected HTTP 202 from $url/intake/v2/events, got $status"
fi
say "HTTP 202: the event went over TLS to the proxy and on to the intake server."

# ---- 6. one OTLP/gRPC export through the proxy (needs Node.js) ----

# The real OpenTelemetry JS exporters (tests/clients), as an application's SDK sends:
# HTTP/2 over TLS (ALPN h2) to the proxy, h2c from the proxy to the intake server.
exporter="$root/tests/clients/otlp-export.mjs"
otlp_result="skipped"
say ""
if [ -n "${QUICKSTART_BIN_DIR:-}" ] &&
  { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
  # With QUICKSTART_BIN_DIR nothing is installed (setup-npm.sh would install Node.js).
  say "==> Skipping the OTLP/gRPC export: node or npm is not installed (apt-get install"
  say "    nodejs npm, then scripts/setup-npm.sh, to see it)."
elif ! "$root/scripts/setup-npm.sh" >"$run/setup-npm.log" 2>&1; then
  show_log "$run/setup-npm.log"
  say "==> Skipping the OTLP/gRPC export: scripts/setup-npm.sh could not install the Node.js"
  say "    clients (log above; npm ci needs the network the first time)."
else
  say "==> Sending one OTLP/gRPC export (a span, a metric, a log record) through the proxy:"
  say "    node tests/clients/otlp-export.mjs --url $url --ca $ca_crt"
  otlp_out="$run/otlp-export.out"
  otlp_status=0
  node "$exporter" --url "$url" --ca "$ca_crt" --timeout-ms 10000 \
    --service-name quickstart >"$otlp_out" 2>&1 || otlp_status=$?
  sed 's/^/    /' "$otlp_out"
  if [ "$otlp_status" -ne 0 ]; then
    show_log "$proxy_log"
    show_log "$demo_log"
    fail "the OTLP/gRPC export through $url failed (exit $otlp_status, output above)"
  fi
  otlp_result="ok"
  say "OTLP/gRPC: traces, metrics and logs went over HTTP/2 with TLS to the proxy and on to"
  say "the intake server over h2c."
fi

# ---- 7. how to point agents at it ----

cat <<EOF

apm-tls-proxy is running with TLS in front of the demo intake server.

  Intake URL (HTTPS):  $url   (https://127.0.0.1:$port works too)
  OTLP (gRPC, HTTP):   the same URL (gRPC by ALPN h2; the export above: $otlp_result)
  CA certificate:      $ca_crt
  Upstream (plain):    http://127.0.0.1:$upstream_port   (apm-intake-demo)
  Metrics, readiness:  http://127.0.0.1:$admin_port/metrics, /readyz
  Configuration:       $config
  Logs:                $proxy_log
                       $demo_log

Point an agent at it (copy and paste; docs/agents.md covers every agent):

  Node.js (elastic-apm-node), Python (elasticapm), Go (go.elastic.co/apm/v2):
    export ELASTIC_APM_SERVER_URL=$url
    export ELASTIC_APM_SERVER_CA_CERT_FILE=$ca_crt
  (in code: Node.js serverCaCertFile, Python server_ca_cert_file / SERVER_CA_CERT_FILE)

  Java (elastic-apm-agent) trusts the JVM truststore, so add the CA to one:
    keytool -importcert -noprompt -alias apm-tls-proxy-ca -file $ca_crt \\
        -keystore $state/truststore.p12 -storetype PKCS12 -storepass changeit
    java -javaagent:elastic-apm-agent.jar -Delastic.apm.server_url=$url \\
        -Djavax.net.ssl.trustStore=$state/truststore.p12 \\
        -Djavax.net.ssl.trustStorePassword=changeit -jar app.jar
  (that store then replaces the JVM's default CAs for the whole application; docs/agents.md
  shows how to add the CA to a copy of cacerts instead. -Delastic.apm.verify_server_cert=false
  turns verification off: for a quick experiment only, never in production.)

  OpenTelemetry SDKs and EDOT (OTLP/gRPC, or OTLP/HTTP with the protocol line):
    export OTEL_EXPORTER_OTLP_ENDPOINT=$url
    export OTEL_EXPORTER_OTLP_CERTIFICATE=$ca_crt
    # export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
  (the OpenTelemetry Collector: the otlp exporter with tls.ca_file, see docs/agents.md)

  curl:
    curl --cacert $ca_crt $url/

If an agent reports "connection refused" for localhost, its runtime tried ::1 first:
use https://127.0.0.1:$port (the certificate covers both).
EOF

if [ "$smoke" = 1 ]; then
  say ""
  say "Smoke test passed (--smoke): stopping."
  exit 0
fi

say ""
say "Following $proxy_log (one access-log line per request). Press Ctrl-C to stop."
tail -n 0 -F "$proxy_log" &
tail_pid=$!
set +e
wait -n "$proxy_pid" "$demo_pid"
code=$?
set -e
if ! kill -0 "$proxy_pid" 2>/dev/null; then
  fail "apm-tls-proxy exited unexpectedly (status $code); see $proxy_log"
fi
fail "apm-intake-demo exited unexpectedly (status $code); see $demo_log"
