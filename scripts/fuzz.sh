#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz", in build/fuzz) and runs each one for a
# bounded time from its seed corpus in tests/fuzz/corpus/<name>/. Any crash, leak, timeout
# or sanitizer report fails the script; the input that did it is kept in the work dir.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 25 s, every target)
# Env: FUZZ_WORK (default build/fuzz/runs) holds the growing corpora and the crash files;
#      FUZZ_JOBS parallel fuzzing processes per target (default 1); see docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-25}"
shift || true

# clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev).
if ! command -v clang++ >/dev/null ||
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: installing clang and libclang-rt-14-dev" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev
fi

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake --preset fuzz "${launcher[@]}" >/dev/null

# Every target tests/fuzz/CMakeLists.txt defines (the HTTP/2 one joins when it exists).
all=()
for src in tests/fuzz/*_fuzz.cc; do all+=("$(basename "$src" .cc)"); done
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${all[@]}"); fi
jobs="$(nproc 2>/dev/null || echo 2)"
cmake --build build/fuzz -j "$jobs" --target "${targets[@]}"

work="$(realpath -m "${FUZZ_WORK:-build/fuzz/runs}")"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in "${targets[@]}"; do
  corpus_name="${t%_fuzz}"  # http1_parser_fuzz: tests/fuzz/corpus/http1_parser
  seeds="tests/fuzz/corpus/$corpus_name"
  run_dir="$work/$t"
  mkdir -p "$run_dir/corpus" "$run_dir/artifacts"
  # A scratch corpus: libFuzzer adds what it finds there, never to the seeds in git.
  if [ -d "$seeds" ]; then cp -f "$seeds"/* "$run_dir/corpus/"; fi
  echo "== $t: ${seconds}s from $seeds"
  root="$PWD"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192
        -print_final_stats=1 -artifact_prefix="$run_dir/artifacts/")
  if [ -f "tests/fuzz/$corpus_name.dict" ]; then args+=(-dict="$root/tests/fuzz/$corpus_name.dict"); fi
  # Several processes only on request: libFuzzer's -jobs mode writes fuzz-N.log files to
  # the working directory, here the target's run directory (FUZZ_WORK/<target>).
  if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then args+=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi
  if ! (cd "$run_dir" && "$root/build/fuzz/tests/fuzz/$t" "${args[@]}" corpus) \
      >"$run_dir/log" 2>&1; then
    failed+=("$t")
    tail -n 60 "$run_dir/log" >&2
    echo "== $t FAILED; reproduce: build/fuzz/tests/fuzz/$t $run_dir/artifacts/<file>" >&2
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$run_dir/log" | tr '\n' ' '
    echo
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: every target ran ${seconds}s without a finding"
