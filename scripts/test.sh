#!/usr/bin/env bash
# The test suite on a fresh clone: set up everything (system packages included), then run
# pytest. The end-to-end tests start their own Xvfb, PulseAudio and D-Bus.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
