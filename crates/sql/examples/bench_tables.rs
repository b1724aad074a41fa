//! Table engine benchmarks, one JSON line per figure (`scripts/bench_tables.sh` runs this beside
//! DuckDB on the same files and prints the ratios):
//!
//! - each query of a folder of `.sql` files over a folder of tables, as the administrator and as
//!   a user with a row filter and two masks (median of `runs` after a warm-up);
//! - validation and planning of a point query (`EXPLAIN`-style, nothing read);
//! - a 10-rule data-quality set over the largest table: rows/s and scans;
//! - a profile of the largest table: time per million rows;
//! - an unchanged re-discovery of the folder (nothing read).
//!
//! Usage: `bench_tables DATA_DIR QUERIES_DIR [RUNS]`.

use groundwork_core::SourceConfig;
use groundwork_core::stats::percentile;
use groundwork_sql::discover::TableLocation;
use groundwork_sql::quality::parse_ruleset;
use groundwork_sql::{Embedded, GrantView, Limits, Mask, QueryEngine, QueryRequest, TableGrant, TablePolicy};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn run(engine: &Embedded, tables: &[TableGrant], sql: &str, explain: bool) -> (f64, usize) {
    let limits = Limits {
        max_rows: 1_000_000,
        timeout: Duration::from_secs(600),
        memory_bytes: 4 << 30,
        ..Limits::default()
    };
    let started = Instant::now();
    let mut rows = 0;
    engine
        .query(
            &QueryRequest {
                sql,
                tables,
                limits,
                explain,
            },
            &mut |batch| {
                rows += batch.num_rows();
                Ok(true)
            },
        )
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (started.elapsed().as_secs_f64() * 1e3, rows)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let data = args.next().expect("DATA_DIR");
    let queries = args.next().expect("QUERIES_DIR");
    let runs: usize = args.next().map_or(3, |r| r.parse().expect("RUNS"));
    let engine = Embedded::new([1u8; 32], Default::default()).expect("engine");
    let location = TableLocation::parse(&data).expect("a folder");
    let config = SourceConfig::default();

    let started = Instant::now();
    let found = engine
        .discover(&location, &config, None, &HashMap::new())
        .expect("discovery");
    let discover_ms = started.elapsed().as_secs_f64() * 1e3;
    let known: HashMap<_, _> = found
        .tables
        .iter()
        .map(|t| (t.location.clone(), t.clone()))
        .collect();
    let started = Instant::now();
    let again = engine
        .discover(&location, &config, None, &known)
        .expect("re-discovery");
    let rediscover_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "{}",
        json!({ "figure": "discovery", "tables": found.tables.len(), "first_ms": discover_ms,
                "unchanged_ms": rediscover_ms, "unchanged_tables_read": again.read.len() })
    );

    let admin: Vec<TableGrant> = found
        .tables
        .iter()
        .map(|def| TableGrant {
            def: def.clone(),
            policy: TablePolicy::unrestricted(),
        })
        .collect();
    // The user: a row filter on lineitem and orders, and two masks (a hashed comment, a nulled
    // clerk), the rest plain.
    let governed: Vec<TableGrant> = found
        .tables
        .iter()
        .map(|def| {
            let view = match def.name.as_str() {
                "lineitem" => GrantView {
                    row_filter: Some("l_linenumber < 8".into()),
                    masks: [("l_comment".to_owned(), Mask::Hash)].into_iter().collect(),
                },
                "orders" => GrantView {
                    row_filter: Some("o_orderkey > 0".into()),
                    masks: [("o_clerk".to_owned(), Mask::Null)].into_iter().collect(),
                },
                _ => GrantView::default(),
            };
            TableGrant {
                def: def.clone(),
                policy: TablePolicy { views: vec![view] },
            }
        })
        .collect();

    let mut files: Vec<_> = std::fs::read_dir(&queries)
        .expect("queries folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let sql = std::fs::read_to_string(&file).unwrap();
        let sql = sql.trim().trim_end_matches(';');
        for (who, tables) in [("admin", &admin), ("governed", &governed)] {
            let (_, rows) = run(&engine, tables, sql, false);
            let times: Vec<f64> = (0..runs).map(|_| run(&engine, tables, sql, false).0).collect();
            println!(
                "{}",
                json!({ "figure": "query", "query": name, "as": who, "median_ms": percentile(&times, 0.5),
                        "runs_ms": times, "rows": rows })
            );
        }
    }

    // Validation and planning of a point query: parse, check, register, plan, optimise.
    let point = "SELECT o_totalprice FROM orders WHERE o_orderkey = 4242";
    let plans: Vec<f64> = (0..50).map(|_| run(&engine, &admin, point, true).0).collect();
    let point_runs: Vec<f64> = (0..10).map(|_| run(&engine, &admin, point, false).0).collect();
    println!(
        "{}",
        json!({ "figure": "point_query", "plan_p50_ms": percentile(&plans, 0.5), "run_p50_ms": percentile(&point_runs, 0.5) })
    );

    let largest = found
        .tables
        .iter()
        .find(|t| t.name == "lineitem")
        .unwrap_or(&found.tables[0]);
    let rules = parse_ruleset(
        r#"Rules = [
            RowCount > 0,
            IsComplete "l_orderkey",
            Completeness "l_comment" >= 0.99,
            ColumnValues "l_returnflag" in ["A", "N", "R"],
            ColumnValues "l_shipmode" in ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"],
            ColumnValues "l_discount" between -0.01 and 0.11,
            Mean "l_quantity" between 20 and 30,
            Sum "l_quantity" > 0,
            StandardDeviation "l_extendedprice" > 0,
            DistinctValuesCount "l_linestatus" = 2
        ]"#,
    )
    .expect("rules");
    let limits = Limits {
        timeout: Duration::from_secs(600),
        memory_bytes: 4 << 30,
        ..Limits::default()
    };
    let others: Vec<_> = found.tables.clone();
    let started = Instant::now();
    let report = engine
        .run_quality(largest, &others, &rules, &|_, _| Vec::new(), limits)
        .expect("quality");
    let seconds = started.elapsed().as_secs_f64();
    let rows = report.rows.unwrap_or(0.0);
    println!(
        "{}",
        json!({ "figure": "quality", "table": largest.name, "rules": 10, "scans": report.scans, "rows": rows,
                "seconds": seconds, "rows_per_second": rows / seconds, "status": report.status })
    );

    let started = Instant::now();
    let profile = engine.profile(largest, limits).expect("profile");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({ "figure": "profile", "table": largest.name, "rows": profile.rows, "seconds": seconds,
                "seconds_per_million_rows": seconds / (profile.rows as f64 / 1e6), "scans": profile.scans })
    );
}
