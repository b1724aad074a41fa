#!/usr/bin/env python3
r"""Times analytical SQL queries in DuckDB over folders of Parquet files: the reference point for
groundwork's own table queries.

    python3 scripts/bench_tables_duckdb.py --data DIR --queries scripts/tpch_queries/ \
        --runs 3 --json [--threads 2] [--only q01,q06] [--require-rows]

DIR holds one folder per table (DIR/lineitem/*.parquet, ..., as scripts/gen_tpch.py writes);
each becomes a view of the same name. Every *.sql file in --queries (sorted by name, one query
each, an optional trailing ';') runs once to warm up and then --runs timed times; the report per
query is the median wall time of the timed runs (each one executes the query and fetches every
result row) and the number of rows returned. DuckDB runs with --threads threads (default 2, the
size of the project's machines).

Output: with --json, one JSON object per query on stdout, e.g.
    {"engine": "duckdb", "query": "q01", "median_s": 0.41, "runs_s": [...], "rows": 4, ...}
and without it a plain table. Exits 1 if a query fails, or returns no rows (or only NULLs) when
--require-rows is given.

Needs: duckdb (pip install duckdb).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time

import duckdb


def create_views(con: duckdb.DuckDBPyConnection, data: str) -> list[str]:
    """One view per subfolder of data that holds Parquet files; returns the table names."""
    tables = []
    for name in sorted(os.listdir(data)):
        folder = os.path.join(data, name)
        if os.path.isdir(folder) and any(f.endswith(".parquet") for f in os.listdir(folder)):
            pattern = os.path.join(os.path.abspath(folder), "*.parquet").replace("'", "''")
            con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{pattern}')")
            tables.append(name)
    return tables


def load_queries(folder: str) -> list[tuple[str, str]]:
    """(name, sql) for each *.sql file, without a trailing semicolon."""
    queries = []
    for file in sorted(f for f in os.listdir(folder) if f.endswith(".sql")):
        with open(os.path.join(folder, file), encoding="utf-8") as f:
            sql = f.read().strip().rstrip(";").strip()
        queries.append((file[: -len(".sql")], sql))
    return queries


def plain(value):
    """A result value as JSON can carry it (dates as ISO text, floats rounded)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (int, str, bool)):
        return value
    return str(value)  # Decimal and anything else


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with one Parquet folder per table")
    parser.add_argument("--queries", required=True, help="folder of *.sql files")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per query (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    parser.add_argument("--only", help="comma-separated query names to run (e.g. q01,q06)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    parser.add_argument("--require-rows", action="store_true",
                        help="fail when a query returns no rows or only NULLs")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    con = duckdb.connect()  # in-memory database; the data stays in the Parquet files
    con.execute(f"SET threads = {int(args.threads)}")
    tables = create_views(con, args.data)
    if not tables:
        print(f"bench_tables_duckdb: no Parquet folders in {args.data}", file=sys.stderr)
        return 2
    queries = load_queries(args.queries)
    if args.only:
        wanted = set(args.only.split(","))
        queries = [q for q in queries if q[0] in wanted]
    if not queries:
        print(f"bench_tables_duckdb: no queries to run from {args.queries}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"DuckDB {duckdb.__version__}, {args.threads} threads, tables: {', '.join(tables)}")
        print(f"{'query':<8} {'median s':>9} {'min s':>8} {'max s':>8} {'rows':>6}")

    failed = False
    for name, sql in queries:
        record = {"engine": "duckdb", "version": duckdb.__version__, "query": name,
                  "threads": args.threads, "data": args.data}
        try:
            rows = con.execute(sql).fetchall()  # warm-up: file metadata and OS page cache
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                rows = con.execute(sql).fetchall()
                times.append(time.perf_counter() - start)
        except duckdb.Error as e:
            failed = True
            record["error"] = str(e).splitlines()[0]
            print(json.dumps(record) if args.json else f"{name:<8} ERROR {record['error']}",
                  flush=True)
            continue
        empty = not rows or all(v is None for v in rows[0])
        if args.require_rows and empty:
            failed = True
        record.update({
            "median_s": round(statistics.median(times), 6),
            "runs_s": [round(t, 6) for t in times],
            "rows": len(rows),
            "first_row": [plain(v) for v in rows[0]] if rows else None,
        })
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            flag = "  (no rows)" if empty else ""
            print(f"{name:<8} {record['median_s']:>9.3f} {min(times):>8.3f} {max(times):>8.3f} "
                  f"{len(rows):>6}{flag}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
