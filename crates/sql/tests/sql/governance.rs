//! Row filters and column masks hold wherever a table appears, against an oracle: the same query
//! over tables the oracle filtered and masked itself (in plain Rust, then written to SQLite)
//! must return exactly the same rows, for thousands of random tables, policies and queries.

use crate::support::*;
use groundwork_core::rng::SplitMix64;
use groundwork_sql::{GrantView, Mask, SqlError, TableDef, TableGrant, TablePolicy};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const KEY: [u8; 32] = [7u8; 32];

fn policy(views: Vec<GrantView>) -> TablePolicy {
    TablePolicy { views }
}

fn view(filter: Option<&str>, masks: &[(&str, Mask)]) -> GrantView {
    GrantView {
        row_filter: filter.map(str::to_owned),
        masks: masks.iter().map(|(c, m)| (c.to_string(), *m)).collect(),
    }
}

fn people(dir: &std::path::Path) -> TableDef {
    let db = dir.join("hr.sqlite");
    sqlite(
        &db,
        "CREATE TABLE people (id INTEGER, name TEXT, region TEXT, salary INTEGER);
         INSERT INTO people VALUES (1, 'Ada', 'eu', 100), (2, 'Bob', 'us', 200), (3, 'Cy', 'eu', 300);",
    );
    let mut def = discover(&engine(), db.to_str().unwrap()).remove(0);
    def.name = "people".into();
    def
}

#[test]
fn filters_and_masks_apply_everywhere_the_table_appears() {
    let dir = tempfile::tempdir().unwrap();
    let def = people(dir.path());
    let engine = engine();
    let grants = vec![TableGrant {
        def: def.clone(),
        policy: policy(vec![view(
            Some("region = 'eu'"),
            &[("salary", Mask::Null), ("name", Mask::Hash)],
        )]),
    }];
    for sql in [
        "SELECT id, name, salary FROM people ORDER BY id",
        "WITH p AS (SELECT * FROM people) SELECT id, name, salary FROM p ORDER BY id",
        "SELECT id, name, salary FROM (SELECT * FROM people WHERE true) s ORDER BY id",
        "SELECT a.id, a.name, a.salary FROM people a JOIN people b ON a.id = b.id ORDER BY a.id",
        "SELECT id, name, salary FROM people UNION SELECT id, name, salary FROM people ORDER BY id",
        "SELECT id, name, salary FROM people WHERE id IN (SELECT id FROM people) ORDER BY id",
    ] {
        let (rows, outcome) = query(&engine, &grants, sql).unwrap();
        assert_eq!(column(&rows, "id"), [json!(1), json!(3)], "{sql}");
        assert!(
            rows.iter().all(|r| r.get("salary").is_none_or(Value::is_null)),
            "{sql}: {rows:?}"
        );
        let names = column(&rows, "name");
        assert!(
            names.iter().all(|n| n.as_str().is_some_and(|s| s.len() == 16)),
            "{sql}: {names:?}"
        );
        let applied = outcome.tables[0]
            .applied
            .row_filter
            .as_deref()
            .unwrap_or_default();
        assert!(applied.contains("region") && applied.contains("eu"), "{applied}");
    }
    // Aggregates see only the admitted rows.
    let (rows, _) = query(&engine, &grants, "SELECT count(*) AS n, max(id) AS m FROM people").unwrap();
    assert_eq!((rows[0]["n"].clone(), rows[0]["m"].clone()), (json!(2), json!(3)));
    // The catalog shows the governed schema: the masked type, no value of the policy.
    let (rows, _) = query(
        &engine,
        &grants,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'people' ORDER BY ordinal_position",
    )
    .unwrap();
    assert_eq!(
        column(&rows, "column_name"),
        [json!("id"), json!("name"), json!("region"), json!("salary")]
    );
    // Hidden columns are not there at all.
    let hidden = vec![TableGrant {
        def: def.clone(),
        policy: policy(vec![view(None, &[("salary", Mask::Hide)])]),
    }];
    assert!(matches!(
        query(&engine, &hidden, "SELECT salary FROM people"),
        Err(SqlError::Invalid(_))
    ));
    let (rows, _) = query(&engine, &hidden, "SELECT * FROM people ORDER BY id").unwrap();
    assert!(rows.iter().all(|r| !r.contains_key("salary")));
    // Two grants: their union. Rows in the eu clear; the us row visible with salary nulled.
    let union = vec![TableGrant {
        def,
        policy: policy(vec![
            view(Some("region = 'eu'"), &[]),
            view(Some("region = 'us'"), &[("salary", Mask::Null)]),
        ]),
    }];
    let (rows, _) = query(&engine, &union, "SELECT id, salary FROM people ORDER BY id").unwrap();
    assert_eq!(column(&rows, "salary"), [json!(100), Value::Null, json!(300)]);
}

#[test]
fn a_hidden_row_never_reaches_the_callers_predicates() {
    let dir = tempfile::tempdir().unwrap();
    let def = people(dir.path());
    let engine = engine();
    let grants = vec![TableGrant {
        def,
        policy: policy(vec![view(Some("id <> 2"), &[])]),
    }];
    // Row 2 is hidden; evaluated on it, the predicate would divide by zero, and the error would
    // tell the caller that a row with id 2 exists.
    let (rows, _) = query(
        &engine,
        &grants,
        "SELECT id FROM people WHERE 10 / (id - 2) > 0 ORDER BY id",
    )
    .unwrap();
    assert_eq!(column(&rows, "id"), [json!(3)]);
    let (rows, _) = query(
        &engine,
        &grants,
        "SELECT p.id FROM people p JOIN people q ON p.id = q.id WHERE 10 / (q.id - 2) > 0 ORDER BY 1",
    )
    .unwrap();
    assert_eq!(column(&rows, "id"), [json!(3)]);
}

// ---- the property test --------------------------------------------------------------------

const REGIONS: &[&str] = &["eu", "us", "apac"];
const FILTERS: &[&str] = &[
    "region = 'eu'",
    "score > 50",
    "id % 2 = 0",
    "region <> 'us' AND score < 80",
    "false",
];
const COLUMNS: &[&str] = &["id", "region", "score", "secret"];

/// One random table: (id, region, score, secret) rows.
type Rows = Vec<(i64, &'static str, i64, String)>;

fn random_rows(rng: &mut SplitMix64) -> Rows {
    (0..(5 + rng.below(25)))
        .map(|i| {
            (
                i as i64,
                REGIONS[rng.below(REGIONS.len())],
                rng.below(100) as i64,
                format!("s{}", rng.below(1000)),
            )
        })
        .collect()
}

fn admits(filter: Option<&str>, row: &(i64, &str, i64, String)) -> bool {
    match filter {
        None => true,
        Some("region = 'eu'") => row.1 == "eu",
        Some("score > 50") => row.2 > 50,
        Some("id % 2 = 0") => row.0 % 2 == 0,
        Some("region <> 'us' AND score < 80") => row.1 != "us" && row.2 < 80,
        Some("false") => false,
        Some(other) => panic!("no oracle for {other}"),
    }
}

fn hash(text: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(KEY);
    hasher.update(text.as_bytes());
    hex::encode(hasher.finalize())[..16].to_owned()
}

/// The oracle's view of a table under a policy: which columns remain, with their values per
/// admitted row (as SQL literals and declared types), computed without DataFusion.
fn oracle(rows: &Rows, views: &[GrantView]) -> (Vec<(String, &'static str)>, Vec<Vec<String>>) {
    let mut columns = Vec::new();
    for (c, name) in COLUMNS.iter().enumerate() {
        let masks: Vec<Option<Mask>> = views.iter().map(|v| v.masks.get(*name).copied()).collect();
        if masks.iter().all(|m| *m == Some(Mask::Hide)) {
            continue;
        }
        // A column some grant shows in the clear for every row keeps its type; one that may
        // come out hashed is text.
        let always_clear = views
            .iter()
            .any(|v| v.row_filter.is_none() && !v.masks.contains_key(*name));
        let hashed = masks.contains(&Some(Mask::Hash)) && !always_clear;
        let declared = if hashed || c == 1 || c == 3 {
            "TEXT"
        } else {
            "INTEGER"
        };
        columns.push((name.to_string(), declared));
    }
    let mut out = Vec::new();
    for row in rows {
        let admitting: Vec<&GrantView> = views
            .iter()
            .filter(|v| admits(v.row_filter.as_deref(), row))
            .collect();
        if admitting.is_empty() {
            continue;
        }
        let mut values = Vec::new();
        for (name, declared) in &columns {
            let raw = match name.as_str() {
                "id" => row.0.to_string(),
                "region" => row.1.to_owned(),
                "score" => row.2.to_string(),
                _ => row.3.clone(),
            };
            let clear = admitting.iter().any(|v| !v.masks.contains_key(name.as_str()));
            let hashed = admitting
                .iter()
                .any(|v| v.masks.get(name.as_str()) == Some(&Mask::Hash));
            let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
            values.push(if clear {
                if *declared == "TEXT" { quoted(&raw) } else { raw }
            } else if hashed {
                quoted(&hash(&raw))
            } else {
                "NULL".to_owned()
            });
        }
        out.push(values);
    }
    (columns, out)
}

fn random_views(rng: &mut SplitMix64) -> Vec<GrantView> {
    (0..1 + rng.below(3))
        .map(|_| GrantView {
            row_filter: rng
                .chance(60)
                .then(|| FILTERS[rng.below(FILTERS.len())].to_owned()),
            // `id` is never hidden, so a table keeps at least one column.
            masks: COLUMNS
                .iter()
                .filter_map(|c| {
                    let kinds: &[Mask] = if *c == "id" {
                        &[Mask::Hash, Mask::Null]
                    } else {
                        &[Mask::Hash, Mask::Null, Mask::Hide]
                    };
                    rng.chance(30)
                        .then(|| (c.to_string(), kinds[rng.below(kinds.len())]))
                })
                .collect::<BTreeMap<_, _>>(),
        })
        .collect()
}

const QUERIES: &[&str] = &[
    "SELECT * FROM a",
    "SELECT * FROM b",
    "SELECT id, secret FROM a",
    "SELECT region, count(*) AS n, sum(score) AS s FROM a GROUP BY region",
    "SELECT count(*) AS n FROM a WHERE score > 30",
    "SELECT a.id, b.score FROM a JOIN b ON a.id = b.id",
    "SELECT a.secret FROM a LEFT JOIN b ON a.id = b.id WHERE b.id IS NULL",
    "SELECT id FROM a UNION ALL SELECT id FROM b",
    "SELECT id FROM a WHERE id IN (SELECT id FROM b)",
    "WITH x AS (SELECT * FROM a WHERE region = 'eu') SELECT id, score FROM x",
    "SELECT (SELECT max(score) FROM b) AS m, count(*) AS n FROM a",
    "SELECT secret, count(*) AS n FROM a GROUP BY secret",
    "SELECT id FROM a WHERE 100 / (score - 50) > 1",
    "SELECT DISTINCT region FROM b",
    // Predicates a scan may take in (infallible, on clear columns) and ones it may not (on
    // masked columns): the result is the same either way.
    "SELECT id, secret FROM a WHERE region IN ('eu', 'us') AND score BETWEEN 10 AND 60",
    "SELECT id FROM a WHERE secret IS NOT NULL AND NOT (score < 20)",
];

/// Queries naming `c`, which is never granted: always `not_found`.
const DENIED: &[&str] = &[
    "SELECT * FROM c",
    "SELECT a.id FROM a JOIN c ON a.id = c.id",
    "SELECT id FROM a WHERE id IN (SELECT id FROM c)",
    "WITH x AS (SELECT * FROM c) SELECT count(*) AS n FROM x",
];

fn sorted_rows(
    result: Result<(Vec<serde_json::Map<String, Value>>, groundwork_sql::QueryOutcome), SqlError>,
) -> Result<Vec<String>, String> {
    result
        .map(|(rows, _)| {
            let mut out: Vec<String> = rows
                .iter()
                .map(|r| Value::Object(r.clone()).to_string())
                .collect();
            out.sort();
            out
        })
        .map_err(|e| e.code().to_string())
}

#[test]
fn governed_queries_equal_queries_over_the_oracles_tables() {
    let cases: usize = std::env::var("GROUNDWORK_PROPERTY_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(0x7461_626c_6573);
    let mut compared = 0;
    let mut denied = 0;
    for case in 0..cases {
        // Fresh data every 50 cases; fresh policies and a fresh query every case.
        let data_dir = dir.path().join(format!("data{}", case / 50));
        let source = data_dir.join("src.sqlite");
        let tables: Vec<Rows> = (0..3)
            .map(|i| {
                let mut seeded = SplitMix64::new((case / 50) as u64 * 31 + i);
                random_rows(&mut seeded)
            })
            .collect();
        if !source.exists() {
            std::fs::create_dir_all(&data_dir).unwrap();
            let mut script = String::new();
            for (name, rows) in ["a", "b", "c"].iter().zip(&tables) {
                script.push_str(&format!(
                    "CREATE TABLE {name} (id INTEGER, region TEXT, score INTEGER, secret TEXT);"
                ));
                for r in rows {
                    script.push_str(&format!(
                        "INSERT INTO {name} VALUES ({}, '{}', {}, '{}');",
                        r.0, r.1, r.2, r.3
                    ));
                }
            }
            sqlite(&source, &script);
        }
        let defs = discover(&engine, source.to_str().unwrap());
        // `c` is never granted; `a` and `b` get random policies.
        let mut grants = Vec::new();
        let mut oracle_script = String::new();
        for (name, rows) in ["a", "b"].iter().zip(&tables) {
            let views = random_views(&mut rng);
            let mut def = defs
                .iter()
                .find(|d| d.name == format!("src.{name}"))
                .unwrap()
                .clone();
            def.name = name.to_string();
            let (columns, values) = oracle(rows, &views);
            if columns.is_empty() {
                oracle_script.push_str(&format!("CREATE TABLE {name} (dummy INTEGER);"));
            } else {
                let declared: Vec<String> = columns.iter().map(|(c, t)| format!("{c} {t}")).collect();
                oracle_script.push_str(&format!("CREATE TABLE {name} ({});", declared.join(", ")));
                for row in values {
                    oracle_script.push_str(&format!("INSERT INTO {name} VALUES ({});", row.join(", ")));
                }
            }
            grants.push(TableGrant {
                def,
                policy: TablePolicy { views },
            });
        }
        let oracle_db = dir.path().join(format!("oracle{case}.sqlite"));
        sqlite(&oracle_db, &oracle_script);
        let oracle_grants: Vec<TableGrant> = discover(&engine, oracle_db.to_str().unwrap())
            .into_iter()
            .map(|mut def| {
                def.name = def.name.rsplit('.').next().unwrap().to_owned();
                TableGrant {
                    def,
                    policy: TablePolicy::unrestricted(),
                }
            })
            .collect();
        let denied_query = rng.chance(10);
        let sql = if denied_query {
            DENIED[rng.below(DENIED.len())]
        } else {
            QUERIES[rng.below(QUERIES.len())]
        };
        let governed = sorted_rows(query(&engine, &grants, sql));
        let expected = sorted_rows(query(&engine, &oracle_grants, sql));
        if denied_query {
            assert_eq!(governed, Err("not_found".to_owned()), "case {case}: {sql}");
            denied += 1;
        } else {
            match (&governed, &expected) {
                (Ok(g), Ok(e)) => assert_eq!(
                    g,
                    e,
                    "case {case}: {sql}\npolicies: {:?}",
                    grants.iter().map(|g| &g.policy).collect::<Vec<_>>()
                ),
                // A column the policy hides is unknown to both: the same kind of refusal.
                (Err(g), Err(e)) => assert_eq!(g, e, "case {case}: {sql}"),
                _ => panic!(
                    "case {case}: {sql}\ngoverned {governed:?}\noracle {expected:?}\npolicies: {:?}",
                    grants.iter().map(|g| &g.policy).collect::<Vec<_>>()
                ),
            }
            compared += 1;
        }
        std::fs::remove_file(&oracle_db).ok();
    }
    assert!(compared + denied == cases);
    assert!(
        denied > 0 && compared > cases / 2,
        "{compared} compared, {denied} denied"
    );
}
