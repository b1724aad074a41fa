#!/usr/bin/env bash
# Table engine benchmarks, groundwork beside DuckDB on the same Parquet files, in one run:
#   scripts/bench_tables.sh [SCALE] [RUNS]
# Generates TPC-H-like data at SCALE (default 1) with scripts/gen_tpch.py (once; cached under
# target/tpch-sfSCALE), runs scripts/tpch_queries/*.sql in DuckDB (2 threads) and in groundwork
# (release build of crates/sql/examples/bench_tables.rs, as the administrator and as a user with
# a row filter and two masks), and prints per query the medians, the ratio to DuckDB and their
# geometric mean, then the governance overhead, planning, quality, profile and re-sync figures.
# Needs python3 with venv (numpy, pyarrow and duckdb are installed into target/bench-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
runs=${2:-3}
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import numpy, pyarrow, duckdb' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check numpy pyarrow duckdb
fi
data="target/tpch-sf$scale"
if [ ! -d "$data/lineitem" ]; then
  "$venv/bin/python" scripts/gen_tpch.py --scale "$scale" --out "$data"
fi
cargo build --release --quiet -p groundwork-sql --example bench_tables
"$venv/bin/python" scripts/bench_tables_duckdb.py --data "$data" --queries scripts/tpch_queries/ \
  --runs "$runs" --json > target/bench-duckdb.jsonl
"${CARGO_TARGET_DIR:-target}"/release/examples/bench_tables "$data" scripts/tpch_queries "$runs" > target/bench-groundwork.jsonl
"$venv/bin/python" - <<'EOF'
import json, math
duck = {}
for line in open("target/bench-duckdb.jsonl"):
    r = json.loads(line)
    duck[r["query"]] = r["median_s"] * 1000 if "median_s" in r else r.get("median_ms")
ours = [json.loads(l) for l in open("target/bench-groundwork.jsonl")]
rows, ratios, overheads = [], [], []
for r in ours:
    if r["figure"] == "query" and r["as"] == "admin":
        gov = next(g for g in ours if g["figure"] == "query" and g["as"] == "governed" and g["query"] == r["query"])
        d = duck.get(r["query"])
        ratio = r["median_ms"] / d if d else float("nan")
        ratios.append(ratio)
        overheads.append(gov["median_ms"] / r["median_ms"] - 1)
        rows.append(f'{r["query"]:<6} {d:>10.1f} {r["median_ms"]:>12.1f} {ratio:>7.2f}x {gov["median_ms"]:>13.1f} {100*overheads[-1]:>+8.1f}%')
print(f'{"query":<6} {"duckdb ms":>10} {"groundwork":>12} {"ratio":>8} {"governed ms":>13} {"overhead":>9}')
print("\n".join(rows))
geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
overheads.sort()
print(f"geometric mean of ratios: {geo:.2f}x DuckDB; governance overhead median {100*overheads[len(overheads)//2]:+.1f}%")
for r in ours:
    if r["figure"] != "query":
        print(json.dumps(r))
EOF
