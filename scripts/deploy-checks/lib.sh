# shellcheck shell=bash
# deploy-checks area: the helpers every area uses (check, skip, ports, waiting, stopping by PID).
# Sourced by scripts/deploy-checks.sh first: the other areas call these.
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

in_dir() { local dir=$1; shift; (cd "$dir" && "$@"); }
validate() { node "$ROOT/scripts/lib/validate-manifests.js" --modules "$NODE_MODULES" "$@"; }
