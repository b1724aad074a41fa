//! PostgreSQL tables against the real server `scripts/test.sh` starts: discovery with comments,
//! queries pushed down whole, a join with a Parquet folder, row filters pushed per table, and
//! the password read from the variable the configuration names.

use crate::support::*;
use groundwork_core::SourceConfig;
use groundwork_sql::discover::TableLocation;
use groundwork_sql::postgres::Connections;
use groundwork_sql::{Embedded, GrantView, QueryEngine, QueryRequest, SqlError, TableGrant, TablePolicy};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// The test server's URL (`postgres://user@host:port/db`), or `None` to skip outside CI.
fn server() -> Option<String> {
    match std::env::var("GROUNDWORK_TEST_PG_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "GROUNDWORK_TEST_PG_URL is not set: scripts/test.sh starts a PostgreSQL server"
            );
            eprintln!("skipping: no PostgreSQL server (scripts/test.sh starts one)");
            None
        }
    }
}

fn admin_sql(url: &str, script: &str) {
    let password = std::env::var("GROUNDWORK_TEST_PG_PASSWORD").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.password(password);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(script).await.unwrap();
    });
}

fn engine_for(url: &str) -> Embedded {
    let mut password_env = BTreeMap::new();
    password_env.insert(url.to_owned(), "GROUNDWORK_TEST_PG_PASSWORD".to_owned());
    Embedded::new(
        [9u8; 32],
        Connections {
            password_env,
            statement_timeout_ms: 10_000,
        },
    )
    .unwrap()
}

#[test]
fn postgres_tables_are_discovered_and_queried_in_postgres() {
    let Some(url) = server() else {
        return;
    };
    let schema = format!("shop_{}", std::process::id());
    admin_sql(
        &url,
        &format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
             CREATE TABLE {schema}.orders (id integer PRIMARY KEY, customer_id integer, region text, amount numeric(10,2), placed date);
             COMMENT ON TABLE {schema}.orders IS 'One row per order';
             COMMENT ON COLUMN {schema}.orders.region IS 'Sales region: eu or us';
             INSERT INTO {schema}.orders VALUES (1, 10, 'eu', 25.50, '2024-01-02'), (2, 11, 'us', 40.00, '2024-01-03'), (3, 10, 'eu', 12.00, '2024-02-01');
             CREATE VIEW {schema}.eu_orders AS SELECT * FROM {schema}.orders WHERE region = 'eu';"
        ),
    );
    let engine = engine_for(&url);
    let location = TableLocation::parse(&format!("{url}?schema={schema}")).unwrap();
    let found = engine
        .discover(&location, &SourceConfig::default(), Some("shop"), &HashMap::new())
        .unwrap();
    let names: Vec<&str> = found.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["shop.eu_orders", "shop.orders"]);
    let orders = found.tables.iter().find(|t| t.name == "shop.orders").unwrap();
    assert_eq!(orders.comment.as_deref(), Some("One row per order"));
    let region = orders.columns.iter().find(|c| c.name == "region").unwrap();
    assert_eq!(region.comment.as_deref(), Some("Sales region: eu or us"));
    assert!(
        orders.location.ends_with(&format!("/postgres/{schema}/orders")),
        "{}",
        orders.location
    );
    // Unchanged tables: same versions.
    let known: HashMap<_, _> = found
        .tables
        .iter()
        .map(|t| (t.location.clone(), t.clone()))
        .collect();
    let again = engine
        .discover(&location, &SourceConfig::default(), Some("shop"), &known)
        .unwrap();
    assert!(again.read.is_empty(), "{:?}", again.read);

    let grants = unrestricted(&found.tables);
    let sql =
        "SELECT region, count(*) AS n, sum(amount) AS total FROM shop.orders GROUP BY region ORDER BY region";
    let (rows, _) = query(&engine, &grants, sql).unwrap();
    assert_eq!(
        rows,
        vec![
            json!({"region": "eu", "n": 2, "total": 37.5})
                .as_object()
                .unwrap()
                .clone(),
            json!({"region": "us", "n": 1, "total": 40.0})
                .as_object()
                .unwrap()
                .clone(),
        ]
    );
    // The whole query runs in PostgreSQL.
    let explained = engine
        .query(
            &QueryRequest {
                sql,
                tables: &grants,
                limits: Default::default(),
                explain: true,
            },
            &mut |_| Ok(true),
        )
        .unwrap()
        .explain
        .unwrap();
    assert!(explained.contains("runs in PostgreSQL"), "{explained}");
    assert!(explained.contains("GROUP BY"), "{explained}");

    // A join with a Parquet folder runs in DataFusion, each side reading what it needs.
    let dir = tempfile::tempdir().unwrap();
    parquet(
        &dir.path().join("customers/part-0.parquet"),
        "customer_id,name\n10,Ada\n11,Grace\n",
    );
    let mut all = found.tables.clone();
    all.extend(discover(&engine, dir.path().to_str().unwrap()));
    let (rows, _) = query(
        &engine,
        &unrestricted(&all),
        "SELECT c.name, sum(o.amount) AS total FROM shop.orders o JOIN customers c ON c.customer_id = o.customer_id \
         WHERE o.placed >= DATE '2024-01-03' GROUP BY c.name ORDER BY c.name",
    )
    .unwrap();
    assert_eq!(column(&rows, "name"), [json!("Ada"), json!("Grace")]);
    assert_eq!(column(&rows, "total"), [json!(12.0), json!(40.0)]);

    // A row filter and a mask on a PostgreSQL table hold, wherever the table appears.
    let governed = vec![TableGrant {
        def: orders.clone(),
        policy: TablePolicy {
            views: vec![GrantView {
                row_filter: Some("region = 'eu'".into()),
                masks: [("amount".to_owned(), groundwork_sql::Mask::Null)]
                    .into_iter()
                    .collect(),
            }],
        },
    }];
    let (rows, _) = query(
        &engine,
        &governed,
        "SELECT id, amount FROM shop.orders ORDER BY id",
    )
    .unwrap();
    assert_eq!(column(&rows, "id"), [json!(1), json!(3)]);
    assert!(rows.iter().all(|r| r.get("amount").is_none_or(|v| v.is_null())));

    // Without the password's variable, the source is unavailable and the message names it.
    let no_password = Embedded::new([9u8; 32], Connections::default()).unwrap();
    match query(&no_password, &grants, "SELECT count(*) FROM shop.orders") {
        Err(SqlError::Unavailable(message)) => assert!(message.contains("password"), "{message}"),
        other => panic!("expected source_unavailable, got {other:?}"),
    }
    admin_sql(&url, &format!("DROP SCHEMA {schema} CASCADE;"));
}
