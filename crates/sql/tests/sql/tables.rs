//! Discovery and queries over real files: folders of Parquet with Hive partitions, CSV and JSON
//! Lines, SQLite databases; joins across formats; limits, truncation, timeouts and formats.

use crate::support::*;
use groundwork_sql::output::Format;
use groundwork_sql::{Limits, SqlError};
use serde_json::json;
use std::time::Duration;

#[test]
fn files_and_databases_become_tables() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    parquet(
        &root.join("orders/region=eu/part-0.parquet"),
        "order_id,customer_id,amount\n1,10,25.5\n2,11,40.0\n",
    );
    parquet(
        &root.join("orders/region=us/part-0.parquet"),
        "order_id,customer_id,amount\n3,10,12.0\n",
    );
    write(
        &root.join("customers.csv"),
        "customer_id,name,tier\n10,Ada,gold\n11,Grace,silver\n",
    );
    write(
        &root.join("events/2024/day.jsonl"),
        "{\"customer_id\": 10, \"kind\": \"login\"}\n{\"customer_id\": 11, \"kind\": \"logout\"}\n",
    );
    write(&root.join("README.txt"), "not a table");
    sqlite(
        &root.join("crm.sqlite"),
        "CREATE TABLE notes (customer_id INTEGER, note TEXT);
         INSERT INTO notes VALUES (10, 'prefers email'), (11, NULL);
         CREATE VIEW noted AS SELECT customer_id FROM notes WHERE note IS NOT NULL;",
    );
    let engine = engine();
    let tables = discover(&engine, root.to_str().unwrap());
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["crm.noted", "crm.notes", "customers", "events", "orders"]);
    let orders = tables.iter().find(|t| t.name == "orders").unwrap();
    assert_eq!(
        orders.columns.last().unwrap().name,
        "region",
        "partition column: {orders:?}"
    );
    assert!(orders.location.ends_with("/lake/orders/"));
    let grants = unrestricted(&tables);

    let (rows, outcome) = query(
        &engine,
        &grants,
        "SELECT c.name, sum(o.amount) AS total, count(DISTINCT e.kind) AS kinds \
         FROM orders o JOIN customers c ON c.customer_id = o.customer_id \
         JOIN events e ON e.customer_id = c.customer_id \
         WHERE o.region = 'eu' OR c.tier = 'gold' GROUP BY c.name ORDER BY c.name",
    )
    .unwrap();
    assert_eq!(
        rows,
        vec![
            json!({"name": "Ada", "total": 37.5, "kinds": 1})
                .as_object()
                .unwrap()
                .clone(),
            json!({"name": "Grace", "total": 40.0, "kinds": 1})
                .as_object()
                .unwrap()
                .clone(),
        ]
    );
    let touched: Vec<&str> = outcome.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(touched, ["customers", "events", "orders"]);
    assert_eq!(outcome.plan_fingerprint.len(), 64);

    let (rows, _) = query(&engine, &grants, "SELECT * FROM crm.noted").unwrap();
    assert_eq!(column(&rows, "customer_id"), [json!(10)]);
    // The catalog shows the registered tables, and only them.
    let (rows, _) = query(&engine, &grants, "SHOW TABLES").unwrap();
    let listed: Vec<String> = rows
        .iter()
        .filter(|r| r["table_schema"] != "information_schema")
        .map(|r| r["table_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), 5, "{rows:?}");
}

#[test]
fn unchanged_files_are_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    parquet(&dir.path().join("t/a.parquet"), "x\n1\n");
    let engine = engine();
    let location = groundwork_sql::discover::TableLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let config = groundwork_core::SourceConfig::default();
    let first = engine
        .discover(&location, &config, None, &Default::default())
        .unwrap();
    assert_eq!(first.read, ["t"]);
    let known = first
        .tables
        .iter()
        .map(|t| (t.location.clone(), t.clone()))
        .collect();
    let again = engine.discover(&location, &config, None, &known).unwrap();
    assert!(again.read.is_empty(), "{:?}", again.read);
    assert_eq!(again.tables, first.tables);
    parquet(&dir.path().join("t/b.parquet"), "x,y\n2,3\n");
    let changed = engine.discover(&location, &config, None, &known).unwrap();
    assert_eq!(changed.read, ["t"]);
    assert_ne!(changed.tables[0].version, first.tables[0].version);
}

#[test]
fn shared_sqlite_databases_answer_their_questions() {
    let Some(shared) = std::env::var_os("GROUNDWORK_SHARED_DIR") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "GROUNDWORK_SHARED_DIR is not set"
        );
        return;
    };
    let geo = std::path::Path::new(&shared).join("data/sqldbs/text2sql-data/geography/geography.sqlite");
    assert!(geo.is_file(), "{} is missing", geo.display());
    let engine = engine();
    let tables = discover(&engine, geo.to_str().unwrap());
    assert!(tables.iter().any(|t| t.name == "geography.state"), "{tables:?}");
    let (rows, _) = query(
        &engine,
        &unrestricted(&tables),
        "SELECT state_name FROM geography.state ORDER BY population DESC LIMIT 1",
    )
    .unwrap();
    assert_eq!(column(&rows, "state_name"), [json!("california")]);
}

#[test]
fn results_are_bounded_and_formatted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("n.sqlite");
    sqlite(
        &db,
        "CREATE TABLE n (i INTEGER, label TEXT);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000)
         INSERT INTO n SELECT i, 'row ' || i FROM c;",
    );
    let engine = engine();
    let grants = unrestricted(&discover(&engine, db.to_str().unwrap()));
    let limits = Limits {
        max_rows: 100,
        ..Limits::default()
    };
    let (rows, outcome) = query_with(&engine, &grants, "SELECT * FROM n.n ORDER BY i", limits).unwrap();
    assert_eq!(rows.len(), 100);
    assert!(outcome.truncated);
    let (rows, outcome) = query_with(&engine, &grants, "SELECT * FROM n.n WHERE i <= 100", limits).unwrap();
    assert_eq!(rows.len(), 100);
    assert!(!outcome.truncated, "exactly the cap is not truncated");

    // A query that outlives its time limit is stopped.
    let slow = Limits {
        timeout: Duration::from_millis(300),
        max_rows: 10,
        ..Limits::default()
    };
    let cross = "SELECT count(*) FROM n.n a, n.n b WHERE a.label || b.label = 'x'";
    match query_with(&engine, &grants, cross, slow) {
        Err(SqlError::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    // A memory cap turns a hungry query into a typed error, not an abort.
    let tight = Limits {
        memory_bytes: 256 << 10,
        ..Limits::default()
    };
    match query_with(
        &engine,
        &grants,
        "SELECT a.label, b.label FROM n.n a JOIN n.n b ON a.i % 3 = b.i % 3 ORDER BY 1, 2",
        tight,
    ) {
        Err(SqlError::ResourcesExhausted(_)) => {}
        other => panic!(
            "expected resources_exhausted, got {:?}",
            other.map(|(r, _)| r.len())
        ),
    }

    let mut batches = Vec::new();
    let request = groundwork_sql::QueryRequest {
        sql: "SELECT i, label FROM n.n WHERE i < 3 ORDER BY i",
        tables: &grants,
        limits: Limits::default(),
        explain: false,
    };
    let outcome = groundwork_sql::QueryEngine::query(&engine, &request, &mut |b| {
        batches.push(b.clone());
        Ok(true)
    })
    .unwrap();
    let schema = groundwork_sql::engine::result_schema(&outcome.columns);
    let csv =
        String::from_utf8(groundwork_sql::output::write(Format::Csv, &schema, &batches).unwrap()).unwrap();
    assert_eq!(csv, "i,label\n1,row 1\n2,row 2\n");
    let table =
        String::from_utf8(groundwork_sql::output::write(Format::Table, &schema, &batches).unwrap()).unwrap();
    assert!(table.contains("| 1 | row 1 |"), "{table}");
    let parquet_bytes = groundwork_sql::output::write(Format::Parquet, &schema, &batches).unwrap();
    assert_eq!(&parquet_bytes[..4], b"PAR1");
    let explained = groundwork_sql::QueryEngine::query(
        &engine,
        &groundwork_sql::QueryRequest {
            explain: true,
            ..request
        },
        &mut |_| Ok(true),
    )
    .unwrap();
    assert!(explained.explain.unwrap().contains("physical plan"));
}

#[test]
fn large_tables_get_approximate_distinct_counts_for_every_type() {
    // Past a million rows distinct counts are approximate (HyperLogLog); DataFusion's takes
    // integers and strings only, so floats, decimals and dates go through their text.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let rows = groundwork_sql::profile::EXACT_DISTINCT_ROWS as usize + 1;
    let mut csv = String::with_capacity(rows * 24);
    csv.push_str("id,price,day\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},{}.5,2024-01-{:02}\n", i % 1000, i % 28 + 1));
    }
    write(&root.join("big.csv"), &csv);
    let engine = engine();
    let tables = discover(&engine, root.to_str().unwrap());
    let profile = engine.profile(&tables[0], Limits::default()).unwrap();
    assert_eq!(profile.rows, rows as u64);
    let price = profile.columns.iter().find(|c| c.name == "price").unwrap();
    assert!(!price.distinct_exact);
    assert!((950..=1050).contains(&price.distinct), "{price:?}");
    let day = profile.columns.iter().find(|c| c.name == "day").unwrap();
    assert!((26..=30).contains(&day.distinct), "{day:?}");
}
