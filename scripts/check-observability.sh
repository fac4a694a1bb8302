#!/usr/bin/env bash
# Checks the alert rules and the Grafana dashboard offline (docs/metrics.md, "Alerts and
# dashboard"):
#
#   scripts/check-observability.sh          run the checks below
#   scripts/check-observability.sh --sync   first copy the rules into the Helm chart
#
#   - promtool check rules and promtool test rules on deploy/prometheus/
#   - every alert has a test case where it fires and one where it must not
#   - the Helm chart's copy of the rules (helm/apm-tls-proxy/files/) is the same file, and
#     the PrometheusRule the chart renders holds the same rules (when deploy-checks.sh has
#     cached Helm)
#   - the dashboard (deploy/grafana/*.json) is valid JSON with the parts Grafana needs, its
#     queries parse (promtool), and every PromQL expression in it and in the rules names
#     only metrics the proxy exports (tests/unit/admin/fixtures/metrics.golden or the tables
#     of docs/metrics.md); the lint is scripts/lib/observability_lint.py
#
# promtool comes from Debian's prometheus package, unpacked with dpkg-deb rather than
# installed: installing would create a prometheus user and enable and start a Prometheus
# server (its postinst), and pull in the web UI's JavaScript, none of which a check needs.
# It is cached in the same place as scripts/deploy-checks.sh's copy. python3-yaml comes
# from apt when missing. Ends with "N passed, M failed"; exits 1 when any check failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${APM_TLS_PROXY_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/apm-tls-proxy-ci}
RULES=deploy/prometheus/apm-tls-proxy.rules.yml
RULE_TESTS=deploy/prometheus/apm-tls-proxy.rules.test.yml
HELM_RULES=helm/apm-tls-proxy/files/apm-tls-proxy.rules.yml
PROMTOOL=$CACHE/promtool

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-observability.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

log() { printf '%s\n' "$*"; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# check NAME COMMAND...: runs COMMAND from the repository root; PASS, or FAIL and its output.
check() {
  local name=$1 out="$WORK/check.log"
  shift
  if (cd "$ROOT" && "$@") >"$out" 2>&1; then
    passed=$((passed + 1))
    printf 'PASS  %s\n' "$name"
  else
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$name"
    sed -e 's/^/      | /' "$out" | tail -n 80
  fi
}

apt_install() {
  if ! is_root; then
    log "setup: not root, cannot apt-get install $*"
    return 0
  fi
  log "setup: apt-get install $*"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    >"$WORK/apt.log" 2>&1 || tail -n 20 "$WORK/apt.log"
}

setup_python() {
  PYTHON=python3
  command -v python3 >/dev/null || apt_install python3 python3-yaml
  python3 -c 'import yaml' 2>/dev/null && return 0
  # A python3 earlier on PATH (pyenv, venv) may lack the module Debian's python3 has.
  if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    apt_install python3-yaml
  fi
  PYTHON=/usr/bin/python3
}

setup_promtool() {
  [ -x "$PROMTOOL" ] && return 0
  command -v dpkg-deb >/dev/null || apt_install dpkg
  log "setup: promtool from Debian's prometheus package (apt-get download, dpkg-deb -x)"
  local dir="$WORK/prometheus" deb
  mkdir -p "$dir" "$CACHE"
  if ! (cd "$dir" && apt-get download prometheus) >"$WORK/download.log" 2>&1 && is_root; then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$dir" && apt-get download prometheus) >"$WORK/download.log" 2>&1 || true
  fi
  deb=$(find "$dir" -name 'prometheus_*.deb' | head -n 1)
  if [ -z "$deb" ]; then
    log "setup: apt-get download prometheus failed:"
    tail -n 5 "$WORK/download.log"
    return 0
  fi
  dpkg-deb -x "$deb" "$dir/root"
  install -m 0755 "$dir/root/usr/bin/promtool" "$PROMTOOL.tmp"
  mv "$PROMTOOL.tmp" "$PROMTOOL"
}

if [ "${1:-}" = --sync ]; then
  cp "$ROOT/$RULES" "$ROOT/$HELM_RULES"
  log "copied $RULES to $HELM_RULES"
elif [ $# -gt 0 ]; then
  log "usage: $0 [--sync]"
  exit 2
fi

setup_python
setup_promtool

promtool_available() {
  [ -x "$PROMTOOL" ] || { echo "promtool not available (apt-get download prometheus failed)"; return 1; }
}
promtool_check_rules() { promtool_available && "$PROMTOOL" check rules "$RULES"; }
promtool_test_rules() { promtool_available && "$PROMTOOL" test rules "$RULE_TESTS"; }
helm_copy_identical() {
  cmp "$RULES" "$HELM_RULES" || { echo "run scripts/check-observability.sh --sync"; return 1; }
}
lint() { "$PYTHON" "$ROOT/scripts/lib/observability_lint.py" "$@"; }
# The PrometheusRule the chart renders holds exactly the rules of the file.
helm_renders_rules() {
  export HELM_CACHE_HOME="$WORK/helm-home/cache" HELM_CONFIG_HOME="$WORK/helm-home/config" \
    HELM_DATA_HOME="$WORK/helm-home/data"
  rm -rf "$WORK/helm" && cp -r "$ROOT/helm" "$WORK/helm"
  "$HELM" dependency build "$WORK/helm/apm-tls-proxy" --skip-refresh >/dev/null
  "$HELM" template ci "$WORK/helm/apm-tls-proxy" --kube-version 1.29.0 \
    --set metrics.prometheusRule.enabled=true >"$WORK/rendered.yaml"
  lint rendered "$WORK/rendered.yaml" "$RULES"
}
# promtool parses each dashboard query, turned into a recording rule.
dashboard_promql_parses() {
  promtool_available || return 1
  lint as-rules "$1" >"$WORK/dashboard.rules.yml" && "$PROMTOOL" check rules "$WORK/dashboard.rules.yml"
}

check "promtool check rules $RULES" promtool_check_rules
check "promtool test rules $RULE_TESTS" promtool_test_rules
check "every alert has a firing and a not-firing test" lint tests "$RULES" "$RULE_TESTS"
check "Helm chart rules are $RULES" helm_copy_identical
HELM=$CACHE/helm3/helm
if [ -x "$HELM" ]; then
  check "helm template: the PrometheusRule's spec is $RULES" helm_renders_rules
else
  log "SKIP  helm template of the PrometheusRule: no $HELM (scripts/deploy-checks.sh fetches it)"
fi
check "rules name only exported metrics" lint rules "$RULES"
for dashboard in "$ROOT"/deploy/grafana/*.json; do
  check "dashboard ${dashboard#"$ROOT"/}: JSON, panels, exported metrics only" \
    lint dashboard "$dashboard"
  check "dashboard ${dashboard#"$ROOT"/}: every query parses (promtool)" \
    dashboard_promql_parses "$dashboard"
done

log "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
