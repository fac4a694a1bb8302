# shellcheck shell=bash
# deploy-checks area: the kustomize-rendered examples and the apm-server values Pod.
# Sourced by scripts/deploy-checks.sh after set-up: uses its helpers (lib.sh) and state.
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
