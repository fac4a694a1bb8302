#!/usr/bin/env bash
# Runs the shell commands shown in the docs, so that every command a reader copies works as
# written. The convention, for anyone writing docs:
#
#   - Only fenced blocks opened with exactly ```sh are run (indented fences inside list
#     items too). ```console, ```text, ```toml, ```yaml and bare ``` blocks are not:
#     use them for output, file contents and commands that must not run here.
#   - The blocks of one file run in order, each as its own `bash -e -o pipefail` script,
#     in one fresh temporary directory per file, so a later block can use the files an
#     earlier one wrote. `apm-tls-proxy` and `apm-intake-demo` are on PATH (the binaries
#     under test), and `conf` in that directory links to the repository's conf/.
#   - A block whose first line is a comment containing `no-test` is skipped: say why,
#     e.g. `# no-test: runs until Ctrl-C`. Use it for interactive commands, commands that
#     need root or files the reader has, and anything a test cannot undo.
#   - A block whose first line contains `test: background PORT...` (e.g. a `run` command)
#     is started in the background; the next block starts once every PORT accepts
#     connections on 127.0.0.1 (within 20 s). It is stopped (SIGTERM to its process group)
#     after the file's last block. If a PORT is already taken before it starts, the test
#     is skipped (exit 77) rather than failed, since it cannot run as written.
#   - Every other block must exit 0 within 60 s.
#
# Usage: docs_commands_test.sh PROXY_BINARY DEMO_BINARY   (registered in scripts.cmake)
# Environment: DOCS_COMMANDS_FILES="docs/a.md docs/b.md" to choose other files (relative
# paths are taken from the repository root).
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 PROXY_BINARY DEMO_BINARY" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
read -r -a files <<<"${DOCS_COMMANDS_FILES:-docs/getting-started.md docs/certutil.md docs/agents.md docs/troubleshooting.md}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/docs-commands-test.XXXXXX")"
bin="$tmp/bin"
mkdir -p "$bin"
ln -s "$(realpath "$1")" "$bin/apm-tls-proxy"
ln -s "$(realpath "$2")" "$bin/apm-intake-demo"

background_pids=()
# shellcheck disable=SC2317  # runs from the EXIT trap and stop_background
stop_background() {
  local pgid i
  for pgid in "${background_pids[@]}"; do
    kill -TERM -- "-$pgid" 2>/dev/null || continue
    for ((i = 0; i < 100; i++)); do
      kill -0 -- "-$pgid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
    { wait "$pgid" || true; } 2>/dev/null
  done
  background_pids=()
}
# shellcheck disable=SC2317
cleanup() {
  stop_background
  rm -rf "$tmp"
}
trap cleanup EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# extract FILE OUTDIR: writes OUTDIR/NNN.sh per ```sh block, its first line "# FILE:LINE".
extract() {
  local path="$1"
  [[ "$path" == /* ]] || path="$root/$path"
  awk -v out="$2" -v src="$1" '
    function strip(line,   n) {
      n = 0
      while (n < indent && substr(line, 1, 1) == " ") { line = substr(line, 2); n++ }
      return line
    }
    !inblock && match($0, /^ *```sh *$/) {
      inblock = 1; count++; indent = index($0, "`") - 1
      name = sprintf("%s/%03d.sh", out, count)
      printf "# %s:%d\n", src, NR + 1 > name
      next
    }
    inblock && $0 ~ /^ *``` *$/ { inblock = 0; close(name); next }
    inblock { print strip($0) > name }
  ' "$path"
}

failures=0
blocks_run=0
skipped_all=0
for doc in "${files[@]}"; do
  if [ ! -f "$doc" ] && [ ! -f "$root/$doc" ]; then
    printf 'FAIL: %s does not exist\n' "$doc"
    failures=$((failures + 1))
    continue
  fi
  name="$(basename "$doc" .md)"
  work="$tmp/work-$name"
  blocks="$tmp/blocks-$name"
  mkdir -p "$work" "$blocks"
  ln -s "$root/conf" "$work/conf"
  extract "$doc" "$blocks"
  doc_failed=0
  for block in "$blocks"/*.sh; do
    [ -e "$block" ] || continue
    where="$(head -n 1 "$block" | sed 's/^# //')"
    first="$(sed -n '2p' "$block")"
    log="${block%.sh}.log"
    case "$first" in
      \#*no-test*)
        printf 'skip: %s (%s)\n' "$where" "${first#\# }"
        continue
        ;;
    esac
    if [ "$doc_failed" = 1 ]; then
      printf 'skip: %s (an earlier block of this file failed)\n' "$where"
      continue
    fi
    blocks_run=$((blocks_run + 1))
    if [[ "$first" =~ test:\ background((\ [0-9]+)+) ]]; then
      read -r -a ports <<<"${BASH_REMATCH[1]}"
      for p in "${ports[@]}"; do
        if port_busy "$p"; then
          printf 'SKIP: %s needs port %s on 127.0.0.1, which is already in use\n' "$where" "$p"
          skipped_all=1
        fi
      done
      [ "$skipped_all" = 0 ] || break 2
      # setsid: the block leads its own process group, so everything it started stops
      # with one signal to that group.
      (cd "$work" && PATH="$bin:$PATH" exec setsid bash -e -o pipefail "$block") >"$log" 2>&1 &
      pgid=$!
      background_pids+=("$pgid")
      ready=0
      for ((i = 0; i < 200; i++)); do
        ready=1
        for p in "${ports[@]}"; do port_busy "$p" || ready=0; done
        [ "$ready" = 1 ] && break
        kill -0 "$pgid" 2>/dev/null || break
        sleep 0.1
      done
      if [ "$ready" = 1 ]; then
        printf 'ok: %s (background, listening on %s)\n' "$where" "${ports[*]}"
      else
        printf 'FAIL: %s (background) did not listen on %s\n' "$where" "${ports[*]}"
        sed 's/^/    /' "$block"
        printf '  output:\n'
        sed 's/^/    /' "$log"
        failures=$((failures + 1))
        doc_failed=1
      fi
      continue
    fi
    status=0
    (cd "$work" && PATH="$bin:$PATH" timeout -k 5 60 bash -e -o pipefail "$block") >"$log" 2>&1 ||
      status=$?
    if [ "$status" -eq 0 ]; then
      printf 'ok: %s\n' "$where"
    else
      printf 'FAIL: %s exited %d\n' "$where" "$status"
      sed 's/^/    /' "$block"
      printf '  output:\n'
      sed 's/^/    /' "$log"
      failures=$((failures + 1))
      doc_failed=1
    fi
  done
  stop_background
done

if [ "$skipped_all" = 1 ]; then
  exit 77
fi
if [ "$failures" -ne 0 ]; then
  printf '%d block(s) failed\n' "$failures"
  exit 1
fi
if [ "$blocks_run" -eq 0 ]; then
  echo "FAIL: no \`\`\`sh blocks found in ${files[*]}"
  exit 1
fi
printf 'all %d shell blocks ran\n' "$blocks_run"
