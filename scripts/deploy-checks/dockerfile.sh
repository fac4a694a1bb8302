# shellcheck shell=bash
# deploy-checks area: the Dockerfile linters, the facts the image keeps, the build context.
# Sourced by scripts/deploy-checks.sh after set-up: uses its helpers (lib.sh) and state.
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
  [ "$(runtime_packages)" = "android-libboringssl,ca-certificates,libnghttp2-14,libtomlplusplus3,libuv1,libyaml-cpp0.7" ] ||
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
