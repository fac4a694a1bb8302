# shellcheck shell=bash
# deploy-checks area: the built binary: configuration files, the runtime stage, /metrics.
# Sourced by scripts/deploy-checks.sh after set-up: uses its helpers (lib.sh) and state.
# ---------------------------------------------------------------------------------------
# The binary: configuration files, runtime stage, metrics
# ---------------------------------------------------------------------------------------
log ""
log "== Binary: $BINARY"
if [ ! -x "$BINARY" ]; then
  for name in "apm-tls-proxy check on shipped configs" "runtime stage (chroot as 65532)" "promtool check metrics"; do
    failed=$((failed + 1))
    FAILED_CHECKS+=("$name")
    log "FAIL  $name: no binary at $BINARY (cmake --preset release && cmake --build --preset release)"
  done
else
  PKI="$WORK/pki"
  mint_pki() {
    "$BINARY" certutil ca --out "$PKI" &&
      "$BINARY" certutil cert --ca-cert "$PKI/ca.crt" --ca-key "$PKI/ca.key" --name localhost --out "$PKI" &&
      "$BINARY" certutil cert --ca-cert "$PKI/ca.crt" --ca-key "$PKI/ca.key" --name apm-agent --client --out "$PKI" &&
      "$BINARY" certutil cert --ca-cert "$PKI/ca.crt" --ca-key "$PKI/ca.key" --name intruder --client --out "$PKI" &&
      mkdir -p "$PKI/tls" &&
      cp "$PKI/localhost/localhost.crt" "$PKI/tls/tls.crt" &&
      cp "$PKI/localhost/localhost.key" "$PKI/tls/tls.key" &&
      cp "$PKI/ca.crt" "$PKI/tls/ca.crt"
  }
  check "certutil: CA, server and client certificates" mint_pki

  # Every proxy configuration we ship, through the real loader (unknown keys are errors).
  # Certificate paths point at the minted test files; everything else is as shipped.
  CONFIGS="$WORK/configs"
  mkdir -p "$CONFIGS"
  extract_configs() {
    cp "$ROOT/deploy/systemd/apm-tls-proxy.toml" "$CONFIGS/systemd.toml" || return 1
    cp "$ROOT/deploy/kubernetes/components/apm-tls-proxy-sidecar/apm-tls-proxy.toml" "$CONFIGS/component.toml" ||
      return 1
    node - "$NODE_MODULES" "$CONFIGS" "$ROOT/deploy/kubernetes/apm-tls-proxy-config.yaml" "$RENDERED"/helm*.yaml <<'EOF' || return 1
const path = require('path');
const fs = require('fs');
const [modules, outDir, ...files] = process.argv.slice(2);
const yaml = require(path.join(modules, 'js-yaml'));
for (const f of files) {
  yaml.loadAll(fs.readFileSync(f, 'utf8')).forEach((d, i) => {
    if (d && d.kind === 'ConfigMap' && d.data && d.data['apm-tls-proxy.toml']) {
      fs.writeFileSync(path.join(outDir, `${path.basename(f, '.yaml')}-${i}.toml`), d.data['apm-tls-proxy.toml']);
    }
  });
}
EOF
    sed -i "s#/etc/apm-tls-proxy/tls/#$PKI/tls/#g" "$CONFIGS"/*.toml
  }
  check_configs() {
    local f rc=0 n=0
    for f in "$CONFIGS"/*.toml; do
      n=$((n + 1))
      if "$BINARY" check --config "$f" >"$f.out" 2>&1; then
        echo "ok: $(basename "$f")"
      else
        rc=1
        echo "INVALID: $(basename "$f")"
        sed 's/^/    /' "$f.out"
      fi
    done
    [ "$n" -gt 0 ] || { echo "no configurations found"; return 1; }
    return "$rc"
  }
  check "extract shipped configs (systemd, kustomize, ConfigMap, Helm renders)" extract_configs
  check "apm-tls-proxy check on every shipped config" check_configs

  # A tiny plain-HTTP upstream on loopback, shared by the runtime-stage and metrics checks.
  UPSTREAM_PORT=$(free_port)
  python3 "$ROOT/scripts/lib/test-upstream.py" "$UPSTREAM_PORT" 2>"$WORK/upstream.log" &
  UPSTREAM_PID=$!
  PIDS+=("$UPSTREAM_PID")
  wait_http "http://127.0.0.1:$UPSTREAM_PORT/" 10 >/dev/null || log "  note: test upstream did not start"

  # write_config FILE TLS_DIR PORT ADMIN_PORT: a test config, loopback only.
  write_config() {
    cat >"$1" <<EOF
[server]
host = "127.0.0.1:$3"
workers = 1
shutdown_delay = "0s"
shutdown_timeout = "5s"
[upstream]
url = "http://127.0.0.1:$UPSTREAM_PORT"
[ssl]
certificate = "$2/tls.crt"
key = "$2/tls.key"
[admin]
host = "127.0.0.1:$4"
ready_requires_upstream = true
[log]
level = "info"
access = "stderr"
EOF
  }

  # HTTPS request through the proxy, the certificate verified for "localhost".
  tls_request() {
    local port=$1 body
    body=$(curl -sS --fail --max-time 10 --cacert "$PKI/ca.crt" \
      --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/") || return 1
    echo "GET / -> $body"
    echo "$body" | grep -q test-upstream || { echo "unexpected body"; return 1; }
    local code
    code=$(printf '{"metadata":{"service":{"name":"ci","agent":{"name":"ci","version":"1"}}}}\n' |
      curl -sS --max-time 10 --cacert "$PKI/ca.crt" --resolve "localhost:$port:127.0.0.1" \
        -H 'Content-Type: application/x-ndjson' --data-binary @- -o /dev/null -w '%{http_code}' \
        "https://localhost:$port/intake/v2/events") || return 1
    echo "POST /intake/v2/events -> $code"
    [ "$code" = 202 ]
  }

  # --- runtime stage ---------------------------------------------------------------
  if ! is_root; then
    skip "runtime stage (chroot as 65532)" "needs root for chroot"
  elif [ -z "$ROOTFS_TARBALL" ] || [ ! -f "$ROOTFS_TARBALL" ]; then
    failed=$((failed + 1))
    FAILED_CHECKS+=("runtime stage")
    log "FAIL  runtime stage: no root filesystem (mmdebstrap failed, see above)"
  else
    RFS="$WORK/rootfs"
    prepare_rootfs() {
      mkdir -p "$RFS" || return 1
      tar -xf "$ROOTFS_TARBALL" -C "$RFS" || return 1
      install -m 0755 "$BINARY" "$RFS/usr/bin/apm-tls-proxy" || return 1
      install -d -m 0755 "$RFS/etc/apm-tls-proxy/tls" || return 1
      # As in Kubernetes: root-owned files, group = the pod's fsGroup (65532), mode 0440.
      install -m 0440 -o 0 -g 65532 "$PKI/tls/tls.crt" "$PKI/tls/tls.key" "$PKI/tls/ca.crt" \
        "$RFS/etc/apm-tls-proxy/tls/" || return 1
      echo "root filesystem: $(du -sh "$RFS" | cut -f1), packages: $ROOTFS_PACKAGES"
    }
    in_chroot() { chroot --userspec=65532:65532 "$RFS" "$@"; }
    chroot_version() { in_chroot /usr/bin/apm-tls-proxy --version; }
    RT_PORT=$(free_port)
    RT_ADMIN=$(free_port)
    RT_PID=""
    chroot_start() {
      write_config "$RFS/etc/apm-tls-proxy/apm-tls-proxy.toml" /etc/apm-tls-proxy/tls "$RT_PORT" "$RT_ADMIN"
      chroot --userspec=65532:65532 "$RFS" /usr/bin/apm-tls-proxy run \
        --config /etc/apm-tls-proxy/apm-tls-proxy.toml >"$WORK/chroot-proxy.log" 2>&1 &
      RT_PID=$!
      PIDS+=("$RT_PID")
      wait_http "http://127.0.0.1:$RT_ADMIN/readyz" 15 || { cat "$WORK/chroot-proxy.log"; return 1; }
      local code
      code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RT_ADMIN/readyz")
      echo "readyz: $code"
      [ "$code" = 200 ] || { cat "$WORK/chroot-proxy.log"; return 1; }
    }
    chroot_tls() { tls_request "$RT_PORT" || { cat "$WORK/chroot-proxy.log"; return 1; }; }
    chroot_sigterm() {
      [ -n "$RT_PID" ] || { echo "proxy not started"; return 1; }
      local rc=0
      stop_pid "$RT_PID" 15 || rc=$?
      echo "exit status after SIGTERM: $rc"
      tail -n 5 "$WORK/chroot-proxy.log"
      [ "$rc" = 0 ]
    }
    check "runtime stage: mmdebstrap rootfs + binary" prepare_rootfs
    check "runtime stage: --version as 65532:65532" chroot_version
    check "runtime stage: run with TLS as 65532, /readyz 200" chroot_start
    check "runtime stage: HTTPS request through the proxy (curl --cacert)" chroot_tls
    check "runtime stage: SIGTERM drains and exits 0" chroot_sigterm
  fi

  # --- mutual TLS with an allow-list (as ci/mtls-required-values.yaml configures) ------
  mtls_check() {
    local port admin pid rc=0 code
    port=$(free_port)
    admin=$(free_port)
    write_config "$WORK/mtls.toml" "$PKI/tls" "$port" "$admin"
    {
      echo '[ssl.allowed_clients]'
      echo 'common_names = ["apm-agent"]'
    } >>"$WORK/mtls.toml"
    sed -i "s#^key = .*#&\ncertificate_authorities = [\"$PKI/tls/ca.crt\"]\nclient_authentication = \"required\"#" \
      "$WORK/mtls.toml"
    "$BINARY" run --config "$WORK/mtls.toml" >"$WORK/mtls-proxy.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_http "http://127.0.0.1:$admin/readyz" 15 || { cat "$WORK/mtls.toml" "$WORK/mtls-proxy.log"; return 1; }
    local -a base=(curl -s --max-time 10 --cacert "$PKI/ca.crt" --resolve "localhost:$port:127.0.0.1"
      -o /dev/null -w '%{http_code}')
    code=$("${base[@]}" --cert "$PKI/apm-agent/apm-agent.crt" --key "$PKI/apm-agent/apm-agent.key" \
      "https://localhost:$port/") || true
    echo "client apm-agent (allowed): HTTP $code"
    [ "$code" = 200 ] || rc=1
    code=$("${base[@]}" "https://localhost:$port/") || true
    echo "no client certificate: HTTP $code (000 = refused)"
    [ "$code" = 000 ] || rc=1
    code=$("${base[@]}" --cert "$PKI/intruder/intruder.crt" --key "$PKI/intruder/intruder.key" \
      "https://localhost:$port/") || true
    echo "client intruder (not on the allow-list): HTTP $code (000 = refused)"
    [ "$code" = 000 ] || rc=1
    stop_pid "$pid" 15 >/dev/null || true
    [ "$rc" = 0 ] || tail -n 20 "$WORK/mtls-proxy.log"
    return "$rc"
  }
  check "mutual TLS: allow-listed client served, others refused" mtls_check

  # --- metrics ---------------------------------------------------------------------
  if [ ! -x "$PROMTOOL" ]; then
    failed=$((failed + 1))
    FAILED_CHECKS+=("promtool")
    log "FAIL  promtool check metrics: promtool not available (apt-get download prometheus failed)"
  else
    M_PORT=$(free_port)
    M_ADMIN=$(free_port)
    M_PID=""
    metrics_check() {
      write_config "$WORK/metrics.toml" "$PKI/tls" "$M_PORT" "$M_ADMIN"
      "$BINARY" run --config "$WORK/metrics.toml" >"$WORK/metrics-proxy.log" 2>&1 &
      M_PID=$!
      PIDS+=("$M_PID")
      wait_http "http://127.0.0.1:$M_ADMIN/healthz" 15 || { cat "$WORK/metrics-proxy.log"; return 1; }
      # Some traffic first, so that counters and histograms have samples.
      tls_request "$M_PORT" >/dev/null 2>&1 || echo "note: the HTTPS request through the proxy failed"
      curl -s --max-time 5 -o /dev/null "https://127.0.0.1:$M_PORT/" || true  # handshake failure
      curl -sS --fail --max-time 5 -D "$WORK/metrics.headers" -o "$WORK/metrics.txt" \
        "http://127.0.0.1:$M_ADMIN/metrics" || { cat "$WORK/metrics-proxy.log"; return 1; }
      echo "$(wc -l <"$WORK/metrics.txt") lines, $(grep -c '^# TYPE' "$WORK/metrics.txt") families"
      grep -i '^content-type:' "$WORK/metrics.headers"
      local rc=0
      "$PROMTOOL" check metrics <"$WORK/metrics.txt" || rc=1
      grep -q '^apm_tls_proxy_build_info' "$WORK/metrics.txt" || { echo "apm_tls_proxy_build_info missing"; rc=1; }
      grep -qi '^content-type: text/plain; version=0.0.4' "$WORK/metrics.headers" ||
        { echo "Content-Type must be text/plain; version=0.0.4"; rc=1; }
      stop_pid "$M_PID" 15 >/dev/null || true
      return "$rc"
    }
    check "promtool check metrics on a running proxy's /metrics" metrics_check
  fi
  stop_pid "$UPSTREAM_PID" 5 >/dev/null 2>&1 || true
fi
