# shellcheck shell=bash
# deploy-checks area: yamllint, and schema and unknown-field validation of every manifest.
# Sourced by scripts/deploy-checks.sh after set-up: uses its helpers (lib.sh) and state.
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
