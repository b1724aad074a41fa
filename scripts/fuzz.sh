#!/usr/bin/env bash
# A longer campaign of the generated-input tests that `cargo test` runs with a bounded count:
# every parser and the sidecar reader, the filter parsers, JWT/JWKS/API-token parsing, and JSON
# request bodies over HTTP. Prints one line per target: cases, accepted, refused, crashes (a
# crash fails the run), hangs (inputs that hit the per-document deadline), contained panics.
#
#   scripts/fuzz.sh [CASES] [SEED]     (defaults: 20000 cases per target, seed 1)
#
# Needs what scripts/test.sh needs for the HTTP target (the embedding model under
# target/test-env, or GROUNDWORK_MODEL_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-20000}
seed=${2:-1}
export GROUNDWORK_FUZZ_CASES=$cases GROUNDWORK_FUZZ_SEED=$seed
export GROUNDWORK_MODEL_DIR="${GROUNDWORK_MODEL_DIR:-$PWD/target/test-env/home/models/all-MiniLM-L6-v2}"
log=$(mktemp)
run() {
  cargo test --quiet "$@" -- --nocapture --test-threads 1 2>&1 | tee -a "$log" | grep -oE 'fuzz [^:]+: .*|panicked.*|FAILED.*' || true
}
started=$(date +%s)
run -p groundwork-ingest --test it fuzz
run -p groundwork-core --test core
run -p groundwork-govern --test govern
# Each HTTP case embeds a query: a tenth of the count keeps the campaign's time even.
GROUNDWORK_FUZZ_CASES=$((cases / 10)) run -p groundwork-server --test server generated_request_bodies
echo "campaign: $cases cases per target (HTTP: $((cases / 10))), seed $seed, $(($(date +%s) - started)) s"
if grep -qE 'panicked|FAILED|test result: FAILED' "$log"; then
  echo "campaign: FAILURES — see $log"
  exit 1
fi
echo "campaign: no crashes"
