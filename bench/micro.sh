#!/usr/bin/env bash
# Builds the criterion micro-benchmarks in the dev profile and runs them,
# writing the figures into a results page (bench/RESULTS.md unless --output
# is given). Arguments go to bench/run.py, e.g. --output /tmp/micro.md.
set -euo pipefail

exec python3 "$(dirname "$0")/run.py" --only micro "$@"
