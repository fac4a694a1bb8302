# shellcheck shell=bash
# deploy-checks area: systemd-analyze verify and security on the unit.
# Sourced by scripts/deploy-checks.sh after set-up: uses its helpers (lib.sh) and state.
# ---------------------------------------------------------------------------------------
# systemd unit
# ---------------------------------------------------------------------------------------
log ""
log "== systemd"
UNIT_DIR="$WORK/systemd"
mkdir -p "$UNIT_DIR"
# verify needs ExecStart= to point at an existing executable: the built binary.
unit_exec=$BINARY
[ -x "$unit_exec" ] || unit_exec=/bin/true
sed -e "s#^ExecStart=/usr/bin/apm-tls-proxy #ExecStart=$unit_exec #" \
  -e "s#^ExecStartPre=/usr/bin/apm-tls-proxy #ExecStartPre=$unit_exec #" \
  "$ROOT/deploy/systemd/apm-tls-proxy.service" >"$UNIT_DIR/apm-tls-proxy.service"
systemd_verify() {
  [ -x "$BINARY" ] || echo "no binary at $BINARY: verified against /bin/true instead, which is not enough"
  local out
  out=$(cd "$UNIT_DIR" && systemd-analyze verify --man=no "$UNIT_DIR/apm-tls-proxy.service" 2>&1) || true
  if [ -n "$out" ]; then
    echo "systemd-analyze verify printed (any output fails):"
    echo "$out"
    return 1
  fi
  [ -x "$BINARY" ]  # without the real binary the check is not complete
}
systemd_security() {
  local out exposure
  out=$(systemd-analyze security --offline=true --no-pager "$UNIT_DIR/apm-tls-proxy.service" 2>&1) || true
  exposure=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  if [ -z "$exposure" ]; then
    echo "$out"
    echo "no overall exposure level in the output"
    return 1
  fi
  echo "overall exposure: $exposure (limit 2.0)"
  awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || { echo "$out" | grep -v '✓' ; return 1; }
}
check "systemd-analyze verify deploy/systemd/apm-tls-proxy.service (no output)" systemd_verify
check "systemd-analyze security --offline=true: exposure <= 2.0" systemd_security
