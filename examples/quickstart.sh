#!/usr/bin/env bash
# The README's demo command: set everything up on a fresh Debian machine, then run the quickstart sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
exec .venv/bin/farm run examples/quickstart.yaml "$@"
