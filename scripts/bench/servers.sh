# shellcheck shell=bash disable=SC2034,SC2154
# The servers scripts/bench.sh compares (sourced, never run): apm-tls-proxy, nginx and
# HAProxy, each with one worker, pinned to the same CPU, with the same certificates, TLS
# versions, upstream and timeouts. Each serves four endpoints:
#   plain  HTTP/1.1 without TLS
#   tls    TLS 1.3, ECDSA P-256 certificate, ALPN h2 and http/1.1 (gRPC goes over h2c)
#   rsa    TLS 1.2 only, RSA-2048 certificate
#   mtls   TLS 1.3, ECDSA P-256, client certificate required (verified against the CA)
# apm-tls-proxy has one listener per process, so it runs as four processes; nginx and
# HAProxy serve all four from their one worker. A figure only counts the CPU time of the
# process that served it (nginx: master and worker together).
#
# Needs: $tmp, $bin, $upstream (HOST:PORT of apm-intake-demo), pin_server (array).

servers=(proxy nginx haproxy)
endpoints=(plain tls rsa mtls)
declare -A addr=() pid_of=()
declare -A label=([proxy]=apm-tls-proxy [nginx]=nginx [haproxy]=HAProxy)

# make_pki: the CA, an ECDSA and an RSA server certificate for localhost, and a client
# certificate, minted with the proxy's own certutil; HAProxy wants certificate and key in
# one file.
make_pki() {
  local cu=("$bin/apm-tls-proxy" certutil) ca=(--ca-cert "$tmp/pki/ca.crt" --ca-key "$tmp/pki/ca.key")
  "${cu[@]}" ca --out "$tmp/pki" >/dev/null
  "${cu[@]}" cert "${ca[@]}" --name localhost --out "$tmp/pki/ecdsa" >/dev/null
  "${cu[@]}" cert "${ca[@]}" --name localhost --key-type rsa2048 --out "$tmp/pki/rsa" >/dev/null
  "${cu[@]}" cert "${ca[@]}" --name bench-agent --client --out "$tmp/pki" >/dev/null
  ecdsa_crt=$tmp/pki/ecdsa/localhost/localhost.crt ecdsa_key=$tmp/pki/ecdsa/localhost/localhost.key
  rsa_crt=$tmp/pki/rsa/localhost/localhost.crt rsa_key=$tmp/pki/rsa/localhost/localhost.key
  ca_crt=$tmp/pki/ca.crt
  client_crt=$tmp/pki/bench-agent/bench-agent.crt client_key=$tmp/pki/bench-agent/bench-agent.key
  cat "$ecdsa_crt" "$ecdsa_key" >"$tmp/pki/ecdsa.pem"
  cat "$rsa_crt" "$rsa_key" >"$tmp/pki/rsa.pem"
}

# ---- apm-tls-proxy: one process per endpoint ----
# proxy_config ENDPOINT [WORKERS] [ACCESS]: ACCESS is log.access ("off", "stderr" or a
# file); with WORKERS > 1 the admin endpoint is on too, for the per-worker metric.
proxy_config() {
  local endpoint=$1 workers=${2:-1} access=${3:-off}
  cat <<TOML
[server]
host = "127.0.0.1:0"
workers = $workers
idle_timeout = "120s"
request_header_timeout = "120s"
tls_handshake_timeout = "120s"

[upstream]
url = "http://$upstream"

[log]
level = "warn"
access = "$access"
TOML
  [ "$workers" -gt 1 ] && printf '\n[admin]\nhost = "127.0.0.1:0"\n'
  case "$endpoint" in
    tls | mtls) printf '\n[ssl]\ncertificate = "%s"\nkey = "%s"\nsupported_protocols = ["TLSv1.3"]\n' \
      "$ecdsa_crt" "$ecdsa_key" ;;
    rsa) printf '\n[ssl]\ncertificate = "%s"\nkey = "%s"\nsupported_protocols = ["TLSv1.2"]\n' \
      "$rsa_crt" "$rsa_key" ;;
  esac
  [ "$endpoint" = mtls ] && printf 'certificate_authorities = ["%s"]\n' "$ca_crt"
  return 0
}
# start_proxy_as NAME WORKERS ACCESS ENDPOINT...: one apm-tls-proxy process per endpoint,
# known as server NAME (pid_of[NAME.ENDPOINT], addr[NAME.ENDPOINT], admin[NAME.ENDPOINT]).
declare -A proxy_endpoints=() admin=()
start_proxy_as() {
  local name=$1 workers=$2 access=$3 endpoint ready
  shift 3
  proxy_endpoints[$name]="$*"
  for endpoint in "$@"; do
    proxy_config "$endpoint" "$workers" "$access" >"$tmp/$name-$endpoint.toml"
    ready=$tmp/$name-$endpoint.ready
    rm -f "$ready"
    "${pin_server[@]}" "$bin/apm-tls-proxy" run --config "$tmp/$name-$endpoint.toml" \
      --ready-file "$ready" 2>>"$tmp/proxy.log" &
    pid_of[$name.$endpoint]=$!
    pids+=($!)
  done
  for endpoint in "$@"; do
    wait_file "$tmp/$name-$endpoint.ready" 10 || return 1
    addr[$name.$endpoint]=$(sed -n 's/^listen=//p' "$tmp/$name-$endpoint.ready")
    admin[$name.$endpoint]=$(sed -n 's/^admin=//p' "$tmp/$name-$endpoint.ready")
  done
}
start_proxy() { start_proxy_as proxy 1 off "${endpoints[@]}"; }

# ---- nginx: one worker, four server blocks ----
start_nginx() {
  local dir=$tmp/nginx endpoint port
  mkdir -p "$dir"
  declare -A port_of=()
  for endpoint in "${endpoints[@]}"; do
    port_of[$endpoint]=$(free_port)
    addr[nginx.$endpoint]=127.0.0.1:${port_of[$endpoint]}
  done
  local common="
    location / { proxy_pass http://demo; }
    location /opentelemetry.proto.collector. { grpc_pass grpc://demo_h2; }"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 9000; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_timeout 120s;
  keepalive_requests 1000000000;
  client_header_timeout 120s;
  client_body_timeout 120s;
  client_max_body_size 0;
  http2_max_concurrent_streams 100;
  ssl_conf_command NumTickets 1;
  upstream demo { server $upstream; keepalive 64; }
  upstream demo_h2 { server $upstream; keepalive 16; }
  proxy_http_version 1.1;
  proxy_request_buffering off;
  proxy_set_header Connection "";
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto \$scheme;
  server { listen 127.0.0.1:${port_of[plain]}; $common }
  server {
    listen 127.0.0.1:${port_of[tls]} ssl http2;
    ssl_certificate $ecdsa_crt; ssl_certificate_key $ecdsa_key; ssl_protocols TLSv1.3; $common
  }
  server {
    listen 127.0.0.1:${port_of[rsa]} ssl;
    ssl_certificate $rsa_crt; ssl_certificate_key $rsa_key; ssl_protocols TLSv1.2; $common
  }
  server {
    listen 127.0.0.1:${port_of[mtls]} ssl http2;
    ssl_certificate $ecdsa_crt; ssl_certificate_key $ecdsa_key; ssl_protocols TLSv1.3;
    ssl_client_certificate $ca_crt; ssl_verify_client on; $common
  }
}
CONF
  "${pin_server[@]}" nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>>"$dir/error.log" &
  pid_of[nginx]=$!
  pids+=($!)
  for endpoint in "${endpoints[@]}"; do wait_port "${port_of[$endpoint]}" 10 || return 1; done
  local deadline=$((SECONDS + 5))
  pid_of[nginx.worker]=''
  while [ -z "${pid_of[nginx.worker]}" ] && [ "$SECONDS" -lt "$deadline" ]; do
    pid_of[nginx.worker]=$(pgrep -P "${pid_of[nginx]}" | head -1 || true)
    [ -n "${pid_of[nginx.worker]}" ] || sleep 0.05
  done
  for endpoint in "${endpoints[@]}"; do pid_of[nginx.$endpoint]=${pid_of[nginx]}; done
}

# ---- HAProxy: one thread, four frontends; gRPC to the upstream over h2c ----
start_haproxy() {
  local dir=$tmp/haproxy endpoint
  mkdir -p "$dir"
  declare -A port_of=()
  for endpoint in "${endpoints[@]}"; do
    port_of[$endpoint]=$(free_port)
    addr[haproxy.$endpoint]=127.0.0.1:${port_of[$endpoint]}
  done
  local route="  option forwardfor
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  use_backend demo_h2 if { req.hdr(content-type) -m beg application/grpc }
  default_backend demo"
  cat >"$dir/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 9000
defaults
  mode http
  maxconn 9000
  timeout connect 5s
  timeout client 120s
  timeout server 60s
  timeout http-request 120s
  timeout http-keep-alive 120s
  http-reuse safe
frontend plain
  bind 127.0.0.1:${port_of[plain]}
$route
frontend tls
  bind 127.0.0.1:${port_of[tls]} ssl crt $tmp/pki/ecdsa.pem alpn h2,http/1.1 ssl-min-ver TLSv1.3 prefer-client-ciphers
$route
frontend rsa
  bind 127.0.0.1:${port_of[rsa]} ssl crt $tmp/pki/rsa.pem alpn http/1.1 ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2 prefer-client-ciphers
$route
frontend mtls
  bind 127.0.0.1:${port_of[mtls]} ssl crt $tmp/pki/ecdsa.pem alpn h2,http/1.1 ssl-min-ver TLSv1.3 prefer-client-ciphers ca-file $ca_crt verify required
$route
backend demo
  server demo $upstream
backend demo_h2
  server demo $upstream proto h2
CONF
  "${pin_server[@]}" haproxy -db -f "$dir/haproxy.cfg" >>"$dir/haproxy.log" 2>&1 &
  pid_of[haproxy]=$!
  pids+=($!)
  for endpoint in "${endpoints[@]}"; do
    wait_port "${port_of[$endpoint]}" 10 || return 1
    pid_of[haproxy.$endpoint]=${pid_of[haproxy]}
  done
}

start_server() {
  if ! "start_$1"; then
    echo "bench: $1 did not start; its last log lines:" >&2
    tail -5 "$tmp/proxy.log" "$tmp/$1"/*.log 2>/dev/null | sed 's/^/  /' >&2
    return 1
  fi
}
# server_pids SERVER: the processes it runs (what stop_server ends).
server_pids() {
  if [ -n "${proxy_endpoints[$1]:-}" ]; then
    local e
    for e in ${proxy_endpoints[$1]}; do echo "${pid_of[$1.$e]:-}"; done
  else
    echo "${pid_of[$1]:-}"
  fi
}
stop_server() {
  local pid
  for pid in $(server_pids "$1"); do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $(server_pids "$1"); do wait "$pid" 2>/dev/null || true; done
}
# cpu_pids SERVER ENDPOINT: the processes whose CPU time a figure divides by.
cpu_pids() {
  case "$1" in
    proxy*) echo "${pid_of[$1.$2]}" ;;
    nginx) echo "${pid_of[nginx]} ${pid_of[nginx.worker]}" ;;
    haproxy) echo "${pid_of[haproxy]}" ;;
  esac
}
# mem_pid SERVER ENDPOINT: the process that holds the connections.
mem_pid() {
  case "$1" in
    nginx) echo "${pid_of[nginx.worker]}" ;;
    *) echo "${pid_of[$1.$2]}" ;;
  esac
}
# server_alive SERVER: all its processes still run (nginx: its worker too).
server_alive() {
  local pid
  for pid in $(server_pids "$1") ${pid_of[$1.worker]:-}; do
    kill -0 "$pid" 2>/dev/null || return 1
  done
}
