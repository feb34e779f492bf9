#!/usr/bin/env bash
# The main job on a fresh clone: set up, then transcribe the bundled sample recording with
# the bundled tiny-en model through the real spawned worker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/ctrlspeak transcribe --model tiny-en models/data/sample-en.wav "$@"
