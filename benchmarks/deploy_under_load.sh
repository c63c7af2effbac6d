#!/usr/bin/env bash
# A rolling update while busy loops take the cores (a successor replica slow to start): the cluster
# fault test's `serve deploy` case, RUNS times, each record kept in benchmarks/results/.
# HANDOVER_SEC (default 6, as the test) is the replaced replica's wait for a successor; 0 turns the wait off.
# BUSY (default 2) is the number of busy loops.
# Usage: benchmarks/deploy_under_load.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-2}
handover=${HANDOVER_SEC:-6}
busy=${BUSY:-2}
for _ in $(seq "$runs"); do
  loops=()
  for _ in $(seq "$busy"); do yes > /dev/null & loops+=($!); done
  AURALIS_TEST_HANDOVER_SEC=$handover .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_faults_cluster.py -k deploy_new_version | tail -1 || true
  kill "${loops[@]}"
  record="benchmarks/results/deploy_under_load_busy_${busy}_handover_${handover}_$(date -u +%Y%m%dT%H%M%SZ).json"
  cp test-artifacts/fault_recovery.json "$record"
  .venv/bin/python -c "import json, sys; print(json.load(open(sys.argv[1]))['deploy_new_version'])" "$record"
done
