# shellcheck shell=bash
# deploy-checks area: shellcheck on every tracked *.sh.
# Sourced by scripts/deploy-checks.sh after set-up: uses its helpers (lib.sh) and state.
# ---------------------------------------------------------------------------------------
# Shell scripts
# ---------------------------------------------------------------------------------------
log ""
log "== Shell"
mapfile -t SHELL_FILES < <(cd "$ROOT" && { git ls-files '*.sh'; echo scripts/deploy-checks.sh; } | sort -u)
check "shellcheck: ${#SHELL_FILES[@]} scripts" in_dir "$ROOT" shellcheck "${SHELL_FILES[@]}"
