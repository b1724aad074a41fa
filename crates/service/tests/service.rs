//! The service façade against real parts: the embedding model, SQLite, tantivy, files.
//!
//! The property test here checks permission-aware retrieval against a brute-force oracle:
//! for random principals, grants (some expired), document ACLs, queries, result sizes and
//! search types, every result list must equal the administrator's ranking of *all* chunks,
//! restricted to what the oracle says the principal may read, cut to k. Zero leaked chunks and
//! identical rankings, over 10,000 cases.

use groundwork_core::{KnowledgeBaseConfig, SourceConfig, now_millis};
use groundwork_index::{ScoredChunk, SearchType, rrf};
use groundwork_service::{Grantee, Groundwork, NewGrant, PrincipalKind, SearchRequest};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use groundwork_embed::test_model_dir as model_dir;

/// Deterministic, so a failure reproduces from its case number.
use groundwork_core::rng::SplitMix64 as Rng;

const WORDS: &[&str] = &[
    "budget",
    "travel",
    "leave",
    "policy",
    "expense",
    "audit",
    "salary",
    "contract",
    "vendor",
    "laptop",
    "security",
    "password",
    "holiday",
    "parental",
    "invoice",
    "payroll",
    "pension",
    "training",
    "office",
    "remote",
    "meeting",
    "quarter",
    "forecast",
    "hiring",
    "review",
    "bonus",
    "insurance",
    "health",
    "equipment",
    "approval",
];
const FOLDERS: &[&str] = &[
    "hr",
    "hr/private",
    "hrx",
    "finance",
    "finance/board",
    "it",
    "legal",
    "public",
];
const USERS: &[&str] = &["u0", "u1", "u2", "u3", "u4", "u5", "u6"];
const GROUPS: &[&str] = &["g0", "g1", "g2"];

/// One grant as the oracle sees it.
struct OracleGrant {
    grantee: Grantee,
    folder: Option<&'static str>,
    expires_at: Option<i64>,
}

struct Oracle {
    root: String,
    groups: HashMap<&'static str, BTreeSet<&'static str>>,
    grants: Vec<OracleGrant>,
    acls: HashMap<String, Vec<String>>,
}

impl Oracle {
    /// Straight from the definition in ARCHITECTURE.md, written independently of `govern`.
    fn can_read(&self, user: &str, uri: &str, now: i64) -> bool {
        let groups = &self.groups[user];
        let granted = self.grants.iter().any(|g| {
            let mine = match &g.grantee {
                Grantee::User(u) => u == user,
                Grantee::Group(name) => groups.contains(name.as_str()),
            };
            let live = g.expires_at.is_none_or(|at| now < at);
            let prefix = match g.folder {
                Some(folder) => format!("{}/{folder}/", self.root),
                None => format!("{}/", self.root),
            };
            mine && live && uri.starts_with(&prefix)
        });
        granted
            && self.acls.get(uri).is_none_or(|readers| {
                readers.iter().any(|r| {
                    r.strip_prefix("user:") == Some(user)
                        || r.strip_prefix("group:").is_some_and(|g| groups.contains(g))
                })
            })
    }
}

#[test]
fn permission_aware_retrieval_matches_brute_force() {
    let Some(model) = model_dir() else {
        return;
    };
    assert!(model.is_dir());
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let docs = dir.path().join("docs");
    let mut rng = Rng::new(0x6772_6f75_6e64);

    // A random corpus across folders (including `hrx`, which a grant on `hr` must not cover),
    // a third of it with ACLs.
    let mut acl_entries: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..90 {
        let folder = FOLDERS[rng.below(FOLDERS.len())];
        let path = docs.join(folder).join(format!("doc{i:02}.txt"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let words: Vec<&str> = (0..5 + rng.below(25))
            .map(|_| WORDS[rng.below(WORDS.len())])
            .collect();
        std::fs::write(&path, format!("{}.", words.join(" "))).unwrap();
        if rng.chance(33) {
            let readers: Vec<String> = (0..rng.below(3))
                .map(|_| {
                    if rng.chance(50) {
                        format!("user:{}", USERS[rng.below(USERS.len())])
                    } else {
                        format!("group:{}", GROUPS[rng.below(GROUPS.len())])
                    }
                })
                .collect();
            let sidecar = json!({"metadataAttributes": {"n": i}, "access": {"read": readers}});
            std::fs::write(path.with_extension("txt.metadata.json"), sidecar.to_string()).unwrap();
            acl_entries.insert(path.file_name().unwrap().to_string_lossy().into_owned(), readers);
        }
    }

    Groundwork::init(&home).unwrap();
    let admin = Groundwork::open(&home).unwrap();
    admin.create_kb("kb", KnowledgeBaseConfig::default()).unwrap();
    admin
        .add_source("kb", docs.to_str().unwrap(), SourceConfig::default())
        .unwrap();
    let report = admin.sync("kb", &mut ()).unwrap();
    assert!(report.failed.is_empty());

    let root = format!("file://{}", docs.canonicalize().unwrap().display());
    let mut groups: HashMap<&'static str, BTreeSet<&'static str>> = HashMap::new();
    for user in USERS {
        admin.add_principal(PrincipalKind::User, user).unwrap();
        groups.insert(user, BTreeSet::new());
    }
    for group in GROUPS {
        admin.add_principal(PrincipalKind::Group, group).unwrap();
    }
    for user in USERS {
        for group in GROUPS {
            if rng.chance(35) {
                admin.add_member(group, user).unwrap();
                groups.get_mut(user).unwrap().insert(group);
            }
        }
    }
    let now = now_millis();
    let mut grants = Vec::new();
    for _ in 0..14 {
        let grantee = if rng.chance(50) {
            Grantee::User(USERS[rng.below(USERS.len())].to_owned())
        } else {
            Grantee::Group(GROUPS[rng.below(GROUPS.len())].to_owned())
        };
        let folder = (!rng.chance(8)).then(|| FOLDERS[rng.below(FOLDERS.len())]);
        let expires_at = match rng.below(4) {
            0 => Some(now - 3_600_000),
            1 => Some(now + 3_600_000),
            _ => None,
        };
        let location = match folder {
            Some(folder) => docs.join(folder),
            None => docs.clone(),
        };
        admin
            .add_grant(&NewGrant {
                expires_at,
                ..NewGrant::read(grantee.clone(), location.to_str().unwrap())
            })
            .unwrap();
        grants.push(OracleGrant {
            grantee,
            folder,
            expires_at,
        });
    }
    let acls: HashMap<String, Vec<String>> = admin
        .searcher("kb")
        .unwrap()
        .search(&SearchRequest {
            query: WORDS.join(" "),
            k: 1000,
            search_type: Some(SearchType::Lexical),
            filter: None,
        })
        .unwrap()
        .hits
        .into_iter()
        .filter_map(|hit| {
            let name = hit.uri.rsplit('/').next().unwrap().to_owned();
            acl_entries.get(&name).map(|readers| (hit.uri, readers.clone()))
        })
        .collect();
    let oracle = Oracle {
        root,
        groups,
        grants,
        acls,
    };

    // The administrator's full rankings, per query and retriever: the brute-force ground truth.
    let queries: Vec<String> = (0..150)
        .map(|_| {
            (0..1 + rng.below(3))
                .map(|_| WORDS[rng.below(WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let admin_searcher = admin.searcher("kb").unwrap();
    let mut full: BTreeMap<(usize, &str), Vec<(ScoredChunk, String)>> = BTreeMap::new();
    for (q, query) in queries.iter().enumerate() {
        for (name, search_type) in [
            ("lexical", SearchType::Lexical),
            ("semantic", SearchType::Semantic),
        ] {
            let hits = admin_searcher
                .search(&SearchRequest {
                    query: query.clone(),
                    k: 1000,
                    search_type: Some(search_type),
                    filter: None,
                })
                .unwrap()
                .hits;
            let ranked = hits
                .into_iter()
                .map(|h| {
                    let chunk = ScoredChunk {
                        chunk_id: h.chunk_id as u64,
                        doc_id: h.document_id as u64,
                        score: h.score,
                    };
                    (chunk, h.uri)
                })
                .collect();
            full.insert((q, name), ranked);
        }
    }

    let mut cases = 0usize;
    let mut returned = 0usize;
    for user in USERS {
        let mut handle = Groundwork::open(&home).unwrap();
        handle.act_as(user).unwrap();
        let searcher = handle.searcher("kb").unwrap();
        let readable = |ranked: &[(ScoredChunk, String)]| -> Vec<ScoredChunk> {
            ranked
                .iter()
                .filter(|(_, uri)| oracle.can_read(user, uri, now_millis()))
                .map(|(chunk, _)| *chunk)
                .collect()
        };
        for _ in 0..10_000 / USERS.len() + 1 {
            let q = rng.below(queries.len());
            let k = 1 + rng.below(12);
            let search_type = [SearchType::Lexical, SearchType::Semantic, SearchType::Hybrid][rng.below(3)];
            let hits = searcher
                .search(&SearchRequest {
                    query: queries[q].clone(),
                    k,
                    search_type: Some(search_type),
                    filter: None,
                })
                .unwrap()
                .hits;
            let got: Vec<u64> = hits.iter().map(|h| h.chunk_id as u64).collect();
            for hit in &hits {
                assert!(
                    oracle.can_read(user, &hit.uri, now_millis()),
                    "case {cases}: {user} got {} it may not read",
                    hit.uri
                );
            }
            let lexical = readable(&full[&(q, "lexical")]);
            let semantic = readable(&full[&(q, "semantic")]);
            let expected: Vec<u64> = match search_type {
                SearchType::Lexical => lexical.iter().take(k).map(|c| c.chunk_id).collect(),
                SearchType::Semantic => semantic.iter().take(k).map(|c| c.chunk_id).collect(),
                SearchType::Hybrid => rrf(&lexical, &semantic, 60.0, 1.0, 1.0, k)
                    .iter()
                    .map(|c| c.chunk_id)
                    .collect(),
            };
            assert_eq!(
                got, expected,
                "case {cases}: {user}, {search_type}, k={k}, query {:?}",
                queries[q]
            );
            cases += 1;
            returned += got.len();
        }
    }
    assert!(cases >= 10_000);
    // The corpus and grants are random; make sure the cases were not vacuous.
    assert!(
        returned > cases,
        "only {returned} chunks returned over {cases} cases"
    );
    eprintln!("{cases} cases, {returned} chunks returned, none leaked, every ranking identical");
}
