//! Statements that must never run: each is refused with a typed error, and nothing is written,
//! read from outside the granted tables, or learned about ungranted ones.

use crate::support::*;
use groundwork_core::ErrorCode;
use groundwork_sql::{Limits, SqlError};

const HOSTILE: &[&str] = &[
    // Writes and schema changes.
    "INSERT INTO t VALUES (1, 'x')",
    "UPDATE t SET v = 'x'",
    "DELETE FROM t",
    "DROP TABLE t",
    "TRUNCATE t",
    "CREATE TABLE x (a INT)",
    "CREATE TABLE x AS SELECT * FROM t",
    "CREATE VIEW v AS SELECT * FROM t",
    "CREATE OR REPLACE VIEW t2 AS SELECT 1",
    "ALTER TABLE t ADD COLUMN z INT",
    "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '/etc/passwd'",
    "CREATE EXTERNAL TABLE e (a VARCHAR) STORED AS CSV LOCATION 's3://bucket/x.csv'",
    "CREATE SCHEMA s",
    "CREATE DATABASE d",
    "DROP SCHEMA public CASCADE",
    "CREATE FUNCTION f() RETURNS INT RETURN 1",
    "CREATE INDEX i ON t (k)",
    "MERGE INTO t USING t AS s ON t.k = s.k WHEN MATCHED THEN DELETE",
    "INSERT INTO t SELECT * FROM t",
    // Files and copies.
    "COPY t TO '/tmp/out.csv'",
    "COPY (SELECT * FROM t) TO 's3://bucket/leak.parquet'",
    "COPY t FROM '/etc/passwd'",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'file:///etc/passwd'",
    "SELECT * FROM 's3://bucket/secret.parquet'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT read_parquet('s3://bucket/x.parquet')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM parquet_scan('/data/x.parquet')",
    "SELECT load_extension('evil.so')",
    "SELECT * FROM dblink('host=evil', 'SELECT 1') AS x(a INT)",
    // Table functions.
    "SELECT * FROM generate_series(1, 1000000000)",
    "SELECT * FROM range(10)",
    "SELECT * FROM TABLE(generate_series(1, 3))",
    "SELECT * FROM t, LATERAL generate_series(1, t.k)",
    // Session and transaction statements.
    "SET datafusion.execution.batch_size = 1",
    "SET TIME ZONE 'UTC'",
    "RESET datafusion.execution.batch_size",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "START TRANSACTION",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "DEALLOCATE p",
    "ATTACH DATABASE '/etc/x.db' AS x",
    "DETACH DATABASE x",
    "PRAGMA table_info(t)",
    "VACUUM",
    "ANALYZE t",
    "GRANT SELECT ON t TO public",
    "REVOKE SELECT ON t FROM public",
    "SHOW ALL",
    "USE other",
    "DECLARE c CURSOR FOR SELECT 1",
    "CALL p()",
    "LOAD 'x'",
    "INSTALL httpfs",
    // More than one statement, and statements hidden after a comment or a semicolon.
    "SELECT 1; DROP TABLE t",
    "SELECT * FROM t; SELECT * FROM secrets",
    "SELECT 1 -- \n; DELETE FROM t",
    "EXPLAIN INSERT INTO t VALUES (1, 'x')",
    "EXPLAIN ANALYZE DELETE FROM t",
    "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
    // Reaching tables that were not granted (they exist in no session).
    "SELECT * FROM secrets",
    "SELECT * FROM public.secrets",
    "SELECT * FROM groundwork.public.secrets",
    "SELECT * FROM t JOIN secrets ON true",
    "SELECT (SELECT max(v) FROM secrets) FROM t",
    "SELECT * FROM t WHERE k IN (SELECT k FROM secrets)",
    "WITH s AS (SELECT * FROM secrets) SELECT * FROM s",
    "SELECT * FROM t UNION ALL SELECT * FROM secrets",
    "SELECT * FROM datafusion.public.secrets",
    "DESCRIBE secrets",
    "SHOW COLUMNS FROM secrets",
    // Garbage.
    "",
    "   ",
    "SELEC * FROM t",
    "SELECT * FROM t WHERE (((((",
    "\u{0}",
];

#[test]
fn hostile_statements_are_refused_with_typed_errors() {
    assert!(
        HOSTILE.len() >= 50,
        "the red-team list has {} statements",
        HOSTILE.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.sqlite");
    sqlite(
        &db,
        "CREATE TABLE t (k INTEGER, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');
         CREATE TABLE secrets (k INTEGER, v TEXT); INSERT INTO secrets VALUES (1, 'TOPSECRET');",
    );
    let engine = engine();
    let all = discover(&engine, db.to_str().unwrap());
    // Only `t` is granted, under the name `t` in the default schema.
    let mut t = all.iter().find(|d| d.name == "d.t").unwrap().clone();
    t.name = "t".into();
    let grants = unrestricted(&[t]);
    for statement in HOSTILE {
        let result = query(&engine, &grants, statement);
        match &result {
            Err(error) => {
                let code = error.code();
                assert!(
                    matches!(code, ErrorCode::InvalidRequest | ErrorCode::NotFound),
                    "{statement:?} failed with {code}: {error}"
                );
                assert!(!error.to_string().contains("TOPSECRET"), "{statement:?}: {error}");
            }
            Ok((rows, _)) => panic!("{statement:?} ran and returned {rows:?}"),
        }
    }
    // Nothing was changed.
    let (rows, _) = query(&engine, &grants, "SELECT count(*) AS n FROM t").unwrap();
    assert_eq!(rows[0]["n"], 2);
    let check = rusqlite::Connection::open(&db).unwrap();
    let tables: i64 = check
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 2);
}

#[test]
fn huge_and_deep_sql_is_bounded() {
    let engine = engine();
    let limits = Limits::default();
    let huge = format!("SELECT {}", "1 + ".repeat(40_000) + "1");
    assert!(matches!(
        query_with(&engine, &[], &huge, limits),
        Err(SqlError::Invalid(_))
    ));
    let deep = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(matches!(
        query_with(&engine, &[], &deep, limits),
        Err(SqlError::Invalid(_))
    ));
    let nested = format!(
        "SELECT * FROM {}(SELECT 1) x{}",
        "(SELECT * FROM ".repeat(300),
        ") y".repeat(300)
    );
    assert!(query_with(&engine, &[], &nested, limits).is_err());
}
