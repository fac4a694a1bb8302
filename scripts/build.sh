#!/usr/bin/env bash
# Configures and builds one CMake preset (default: release). Usage: scripts/build.sh [PRESET]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/setup.sh
cmake --preset "$preset" >/dev/null
jobs="$(nproc 2>/dev/null || echo 2)"
cmake --build --preset "$preset" -j "$jobs"
ln -sf "build/$preset/compile_commands.json" compile_commands.json 2>/dev/null || true
