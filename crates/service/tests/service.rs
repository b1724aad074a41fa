//! The service façade against real parts: the embedding model, SQLite, tantivy, files.
//!
//! The property test here checks permission-aware retrieval against a brute-force oracle. For
//! two corpora (90 documents, and 2,400 — enough for the 8-bit scan and, with a lowered
//! `[search] ann_min_chunks`, the HNSW graph), several rounds of random memberships, grants (some
//! expired) and document ACLs each, and random users, queries, result sizes and search types:
//! - nothing returned is unreadable under the oracle (written from ARCHITECTURE.md's definition,
//!   independently of `govern`), and someone is denied something in every round;
//! - semantic results equal a brute-force cosine ranking over the stored vectors, restricted to
//!   what the oracle allows, with the exact scores (exact scans: the same top `k`; HNSW: recall
//!   against the brute force, since the graph is approximate);
//! - lexical results equal the unrestricted BM25 ranking (tantivy's scores, whose matching set is
//!   checked against a brute-force scan of the chunk texts) restricted to what the oracle allows;
//! - hybrid results equal reciprocal rank fusion of those two truths.

use groundwork_core::rng::SplitMix64 as Rng;
use groundwork_core::{KnowledgeBaseConfig, SourceConfig, now_millis};
use groundwork_embed::{Embedder, LocalEmbedder, LocalOptions};
use groundwork_index::{ScoredChunk, SearchType, rrf};
use groundwork_service::{Grantee, Groundwork, NewGrant, PrincipalKind, SearchRequest};
use groundwork_store::Store;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use groundwork_embed::test_model_dir as model_dir;

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
/// Never granted anything, in any round.
const NOBODY: &str = "u6";
/// Scores of the same chunk computed in a different summation order differ by float noise.
const NOISE: f32 = 1e-4;
/// What the service hands each retriever for fusion (`[search] fusion_depth`).
const FUSION_DEPTH: usize = 100;

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
    /// Readers named by each document's sidecar, by URI.
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

/// What the store holds, read straight from SQLite: the ground truth's inputs.
struct Corpus {
    /// document id → URI
    uris: HashMap<i64, String>,
    /// (chunk id, document id, lower-cased words, unit vector)
    chunks: Vec<(u64, u64, HashSet<String>, Vec<f32>)>,
}

impl Corpus {
    fn read(home: &Path, model: &str) -> Corpus {
        let store = Store::open(&home.join("groundwork.db")).unwrap();
        let kb = store.kb("kb").unwrap();
        let uris = store
            .document_metadata(kb.id)
            .unwrap()
            .into_iter()
            .map(|(id, uri, _)| (id, uri))
            .collect();
        let mut words: HashMap<i64, (i64, HashSet<String>)> = HashMap::new();
        store
            .for_each_chunk_text(kb.id, |chunk, doc, text| {
                let set = text
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(str::to_lowercase)
                    .collect();
                words.insert(chunk, (doc, set));
            })
            .unwrap();
        let mut chunks = Vec::new();
        store
            .for_each_chunk_vector(kb.id, model, None, |chunk, doc, vector| {
                let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
                let unit = vector.iter().map(|x| x / norm).collect();
                let (_, set) = words.remove(&chunk).expect("every vector has its chunk");
                chunks.push((chunk as u64, doc as u64, set, unit));
            })
            .unwrap();
        assert!(words.is_empty(), "chunks without a vector: {}", words.len());
        Corpus { uris, chunks }
    }

    /// Every chunk by exact cosine to `query`, best first, ties by chunk id.
    fn semantic(&self, query: &[f32]) -> Vec<ScoredChunk> {
        let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        let mut scored: Vec<ScoredChunk> = self
            .chunks
            .iter()
            .map(|(chunk, doc, _, v)| ScoredChunk {
                chunk_id: *chunk,
                doc_id: *doc,
                score: v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>() / norm,
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.chunk_id.cmp(&b.chunk_id)));
        scored
    }

    /// Chunks holding at least one of the query's words: what BM25 may return at all.
    fn matching(&self, query: &str) -> HashSet<u64> {
        let terms: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        self.chunks
            .iter()
            .filter(|(_, _, words, _)| terms.iter().any(|t| words.contains(t)))
            .map(|(chunk, ..)| *chunk)
            .collect()
    }
}

/// The administrator's BM25 ranking of everything that matches, checked against a brute-force
/// scan of the texts; `complete` is false when more chunks match than one search returns.
struct Lexical {
    ranked: Vec<ScoredChunk>,
    complete: bool,
}

fn random_corpus(rng: &mut Rng, docs: &Path, documents: usize, acl_percent: usize) {
    for i in 0..documents {
        let folder = FOLDERS[rng.below(FOLDERS.len())];
        let path = docs.join(folder).join(format!("doc{i:04}.txt"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let words: Vec<&str> = (0..5 + rng.below(25))
            .map(|_| WORDS[rng.below(WORDS.len())])
            .collect();
        std::fs::write(&path, format!("{}.", words.join(" "))).unwrap();
        if rng.below(100) < acl_percent {
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
        }
    }
}

/// The readers each document's sidecar names, by URI.
fn acls_of(docs: &Path, root: &str) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for folder in FOLDERS {
        let Ok(entries) = std::fs::read_dir(docs.join(folder)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(document) = name.strip_suffix(".metadata.json") {
                let sidecar: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let readers = sidecar["access"]["read"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect();
                out.insert(format!("{root}/{folder}/{document}"), readers);
            }
        }
    }
    out
}

/// Replaces every membership and grant with a random set; `wide` always gets a grant on the
/// whole root (so that large allow-lists occur), `NOBODY` never gets anything.
fn regrant(
    admin: &Groundwork,
    rng: &mut Rng,
    docs: &Path,
    wide: &'static str,
) -> (HashMap<&'static str, BTreeSet<&'static str>>, Vec<OracleGrant>) {
    for grant in admin.list_grants().unwrap() {
        if grant.revoked_at.is_none() {
            admin.revoke_grant(grant.id).unwrap();
        }
    }
    let mut groups: HashMap<&'static str, BTreeSet<&'static str>> = HashMap::new();
    for user in USERS {
        groups.insert(user, BTreeSet::new());
        for group in GROUPS {
            let _ = admin.remove_member(group, user);
            if *user != NOBODY && rng.chance(35) {
                admin.add_member(group, user).unwrap();
                groups.get_mut(user).unwrap().insert(group);
            }
        }
    }
    let now = now_millis();
    let mut grants = vec![OracleGrant {
        grantee: Grantee::User(wide.to_owned()),
        folder: None,
        expires_at: None,
    }];
    for _ in 0..10 {
        let grantee = if rng.chance(50) {
            Grantee::User(USERS[rng.below(USERS.len() - 1)].to_owned())
        } else {
            Grantee::Group(GROUPS[rng.below(GROUPS.len())].to_owned())
        };
        let folder = (!rng.chance(8)).then(|| FOLDERS[rng.below(FOLDERS.len())]);
        let expires_at = match rng.below(4) {
            0 => Some(now - 3_600_000),
            1 => Some(now + 3_600_000),
            _ => None,
        };
        grants.push(OracleGrant {
            grantee,
            folder,
            expires_at,
        });
    }
    for g in &grants {
        let location = match g.folder {
            Some(folder) => docs.join(folder),
            None => docs.to_path_buf(),
        };
        admin
            .add_grant(&NewGrant {
                expires_at: g.expires_at,
                ..NewGrant::read(g.grantee.clone(), location.to_str().unwrap())
            })
            .unwrap();
    }
    (groups, grants)
}

/// `got` equals the first `k` of `truth` (a full, exactly scored ranking): positions may differ
/// only between chunks whose truth scores tie within float noise, and every score is exact.
fn assert_exact_ranking(got: &[ScoredChunk], truth: &[ScoredChunk], k: usize, context: &str) {
    let expected = &truth[..k.min(truth.len())];
    assert_eq!(got.len(), expected.len(), "{context}: result size");
    let exact: HashMap<u64, f32> = truth.iter().map(|c| (c.chunk_id, c.score)).collect();
    for (i, (hit, want)) in got.iter().zip(expected).enumerate() {
        let score = exact[&hit.chunk_id];
        assert!(
            (hit.score - score).abs() <= NOISE,
            "{context}: chunk {} scored {} but {score} in truth",
            hit.chunk_id,
            hit.score
        );
        assert!(
            hit.chunk_id == want.chunk_id || (score - want.score).abs() <= NOISE,
            "{context}: rank {i} is chunk {} ({score}); the truth has {} ({})",
            hit.chunk_id,
            want.chunk_id,
            want.score
        );
    }
}

fn scored(hits: &[groundwork_core::Hit]) -> Vec<ScoredChunk> {
    hits.iter()
        .map(|h| ScoredChunk {
            chunk_id: h.chunk_id as u64,
            doc_id: h.document_id as u64,
            score: h.score,
        })
        .collect()
}

/// Tallies over all cases of one phase.
#[derive(Default)]
struct Tally {
    cases: usize,
    returned: usize,
    /// Cases whose unrestricted truth held chunks the user may not read.
    denied: usize,
    /// Lexical/hybrid cases whose truth the administrator's capped search could not give.
    inconclusive: usize,
    /// HNSW cases: brute-force top-k found, out of asked.
    ann_found: usize,
    ann_asked: usize,
    /// Exact-scan cases where the reader could see at least 2,048 chunks (the 8-bit scan).
    quantized: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum VectorPath {
    /// Exact scans (f32, or 8-bit codes with exact re-scoring for 2,048+ allowed chunks).
    Exact,
    /// The HNSW graph for allow-lists above `filter_exact_max_chunks`.
    Graph { filter_exact_max: usize },
}

#[allow(clippy::too_many_arguments)]
fn run_cases(
    home: &Path,
    oracle: &Oracle,
    corpus: &Corpus,
    embedder: &LocalEmbedder,
    queries: &[String],
    rng: &mut Rng,
    cases_per_user: usize,
    path: VectorPath,
    tally: &mut Tally,
) {
    let admin = Groundwork::open(home).unwrap();
    let admin_searcher = admin.searcher("kb").unwrap();
    let query_vectors = embedder
        .embed(&queries.iter().map(String::as_str).collect::<Vec<_>>())
        .unwrap();
    let semantic: Vec<Vec<ScoredChunk>> = query_vectors.iter().map(|q| corpus.semantic(q)).collect();
    let lexical: Vec<Lexical> = queries
        .iter()
        .map(|query| {
            let hits = admin_searcher
                .search(&SearchRequest {
                    query: query.clone(),
                    k: groundwork_service::MAX_K,
                    search_type: Some(SearchType::Lexical),
                    filter: None,
                })
                .unwrap()
                .hits;
            let matching = corpus.matching(query);
            let ranked = scored(&hits);
            let complete = ranked.len() < groundwork_service::MAX_K;
            let got: HashSet<u64> = ranked.iter().map(|c| c.chunk_id).collect();
            assert!(
                got.is_subset(&matching),
                "{query}: BM25 returned a chunk without its words"
            );
            if complete {
                assert_eq!(got, matching, "{query}: BM25 missed matching chunks");
            }
            Lexical { ranked, complete }
        })
        .collect();

    let now = now_millis();
    for user in USERS {
        let readable_docs: HashSet<u64> = corpus
            .uris
            .iter()
            .filter(|(_, uri)| oracle.can_read(user, uri, now))
            .map(|(id, _)| *id as u64)
            .collect();
        let readable_chunks = corpus
            .chunks
            .iter()
            .filter(|(_, doc, ..)| readable_docs.contains(doc))
            .count();
        if *user == NOBODY {
            assert_eq!(readable_chunks, 0);
        }
        let graph = match path {
            // Above the exact threshold a planner picks the filtered graph walk or the scan;
            // the checks below hold for both.
            VectorPath::Graph { filter_exact_max } => readable_chunks > filter_exact_max,
            VectorPath::Exact => false,
        };
        let mut handle = Groundwork::open(home).unwrap();
        handle.act_as(user).unwrap();
        let searcher = handle.searcher("kb").unwrap();
        let restrict = |ranked: &[ScoredChunk]| -> Vec<ScoredChunk> {
            ranked
                .iter()
                .filter(|c| readable_docs.contains(&c.doc_id))
                .copied()
                .collect()
        };
        for _ in 0..cases_per_user {
            let q = rng.below(queries.len());
            let k = 1 + rng.below(12);
            let search_type = [SearchType::Lexical, SearchType::Semantic, SearchType::Hybrid][rng.below(3)];
            let context = format!(
                "case {}: {user}, {search_type}, k={k}, query {:?}",
                tally.cases, queries[q]
            );
            let hits = searcher
                .search(&SearchRequest {
                    query: queries[q].clone(),
                    k,
                    search_type: Some(search_type),
                    filter: None,
                })
                .unwrap()
                .hits;
            for hit in &hits {
                assert!(
                    oracle.can_read(user, &hit.uri, now_millis()),
                    "{context}: got {}, which {user} may not read",
                    hit.uri
                );
            }
            let got = scored(&hits);
            let semantic_truth = restrict(&semantic[q]);
            let lexical_truth = restrict(&lexical[q].ranked);
            // Enough of the truth is known when the capped administrator list holds the
            // reader's top `need`, or holds everything that matches.
            let lexical_known = |need: usize| lexical[q].complete || lexical_truth.len() >= need;
            let unrestricted = match search_type {
                SearchType::Semantic => semantic[q].len(),
                _ => lexical[q].ranked.len(),
            };
            let restricted = match search_type {
                SearchType::Semantic => semantic_truth.len(),
                _ => lexical_truth.len(),
            };
            if restricted < unrestricted {
                tally.denied += 1;
            }
            match search_type {
                SearchType::Semantic if graph => {
                    assert_eq!(
                        got.len(),
                        k.min(semantic_truth.len()),
                        "{context}: top-k not full"
                    );
                    let exact: HashMap<u64, f32> =
                        semantic_truth.iter().map(|c| (c.chunk_id, c.score)).collect();
                    for hit in &got {
                        assert!(
                            (hit.score - exact[&hit.chunk_id]).abs() <= NOISE,
                            "{context}: score"
                        );
                    }
                    let top: HashSet<u64> = semantic_truth.iter().take(k).map(|c| c.chunk_id).collect();
                    tally.ann_found += got.iter().filter(|c| top.contains(&c.chunk_id)).count();
                    tally.ann_asked += top.len();
                }
                SearchType::Semantic => {
                    assert_exact_ranking(&got, &semantic_truth, k, &context);
                    if readable_chunks >= 2048 {
                        tally.quantized += 1;
                    }
                }
                SearchType::Lexical if lexical_known(k) => {
                    assert_exact_ranking(&got, &lexical_truth, k, &context);
                }
                SearchType::Hybrid if !graph && lexical_known(FUSION_DEPTH) => {
                    let lexical_top = &lexical_truth[..FUSION_DEPTH.min(lexical_truth.len())];
                    let semantic_top = &semantic_truth[..FUSION_DEPTH.min(semantic_truth.len())];
                    let expected: Vec<u64> = rrf(lexical_top, semantic_top, 60.0, 1.0, 1.0, k)
                        .iter()
                        .map(|c| c.chunk_id)
                        .collect();
                    let got_ids: Vec<u64> = got.iter().map(|c| c.chunk_id).collect();
                    if got_ids != expected {
                        // Only a near-tie in the semantic truth may reorder the fusion.
                        let tied = semantic_top
                            .windows(2)
                            .any(|w| (w[0].score - w[1].score).abs() <= NOISE);
                        assert!(tied, "{context}: hybrid {got_ids:?}, expected {expected:?}");
                        tally.inconclusive += 1;
                    }
                }
                SearchType::Hybrid => {
                    // Every readable chunk has a vector, so the fusion is full up to k.
                    assert_eq!(got.len(), k.min(semantic_truth.len()), "{context}: result size");
                    tally.inconclusive += 1;
                }
                _ => tally.inconclusive += 1,
            }
            tally.cases += 1;
            tally.returned += got.len();
        }
    }
}

fn set_search_config(home: &Path, ann_min_chunks: usize, filter_exact_max_chunks: usize) {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("ann_min_chunks = ") {
            out.push_str(&format!("ann_min_chunks = {ann_min_chunks}\n"));
        } else if line.starts_with("filter_exact_max_chunks = ") {
            out.push_str(&format!("filter_exact_max_chunks = {filter_exact_max_chunks}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_ne!(out, text, "config.toml names the search settings");
    std::fs::write(&path, out).unwrap();
}

struct Setup {
    name: &'static str,
    seed: u64,
    documents: usize,
    acl_percent: usize,
    rounds: usize,
    cases_per_user: usize,
}

fn prepare(setup: &Setup, dir: &Path, rng: &mut Rng) -> (std::path::PathBuf, std::path::PathBuf) {
    let home = dir.join(setup.name).join("home");
    let docs = dir.join(setup.name).join("docs");
    random_corpus(rng, &docs, setup.documents, setup.acl_percent);
    Groundwork::init(&home).unwrap();
    let admin = Groundwork::open(&home).unwrap();
    for user in USERS {
        admin.add_principal(PrincipalKind::User, user).unwrap();
    }
    for group in GROUPS {
        admin.add_principal(PrincipalKind::Group, group).unwrap();
    }
    admin.create_kb("kb", KnowledgeBaseConfig::default()).unwrap();
    admin
        .add_source("kb", docs.to_str().unwrap(), SourceConfig::default())
        .unwrap();
    (home, docs)
}

fn random_queries(rng: &mut Rng) -> Vec<String> {
    (0..120)
        .map(|_| {
            (0..1 + rng.below(3))
                .map(|_| WORDS[rng.below(WORDS.len())])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn rounds(
    setup: &Setup,
    home: &Path,
    docs: &Path,
    corpus: &Corpus,
    embedder: &LocalEmbedder,
    rng: &mut Rng,
    path: VectorPath,
) -> Tally {
    let root = format!("file://{}", docs.canonicalize().unwrap().display());
    let acls = acls_of(docs, &root);
    let mut tally = Tally::default();
    for round in 0..setup.rounds {
        let admin = Groundwork::open(home).unwrap();
        let wide = USERS[round % (USERS.len() - 1)];
        let (groups, grants) = regrant(&admin, rng, docs, wide);
        let oracle = Oracle {
            root: root.clone(),
            groups,
            grants,
            acls: acls.clone(),
        };
        // Readable sets differ between users, or the round proves little.
        let now = now_millis();
        let readable: BTreeSet<Vec<&String>> = USERS
            .iter()
            .map(|u| {
                corpus
                    .uris
                    .values()
                    .filter(|uri| oracle.can_read(u, uri, now))
                    .collect()
            })
            .collect();
        assert!(
            readable.len() >= 3,
            "{}: round {round} has {} readable sets",
            setup.name,
            readable.len()
        );
        let denied_before = tally.denied;
        let queries = random_queries(rng);
        run_cases(
            home,
            &oracle,
            corpus,
            embedder,
            &queries,
            rng,
            setup.cases_per_user,
            path,
            &mut tally,
        );
        assert!(
            tally.denied > denied_before,
            "{}: round {round} denied nobody anything",
            setup.name
        );
    }
    tally
}

#[test]
fn permission_aware_retrieval_matches_brute_force() {
    let Some(model) = model_dir() else {
        return;
    };
    // The numeric path `init` writes into the homes below ([model] precision).
    let options = LocalOptions {
        precision: groundwork_embed::Precision::machine_default(),
        ..LocalOptions::default()
    };
    let embedder = LocalEmbedder::load(&model, options).unwrap();
    let fingerprint = embedder.fingerprint().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let mut totals = Tally::default();
    let add = |t: Tally, totals: &mut Tally| {
        totals.cases += t.cases;
        totals.returned += t.returned;
        totals.denied += t.denied;
        totals.inconclusive += t.inconclusive;
        totals.ann_found += t.ann_found;
        totals.ann_asked += t.ann_asked;
        totals.quantized += t.quantized;
    };

    // 1. A small corpus, a third of it under ACLs: exact f32 scans.
    let small = Setup {
        name: "small",
        seed: 0x6772_6f75_6e64,
        documents: 90,
        acl_percent: 33,
        rounds: 4,
        cases_per_user: 230,
    };
    let mut rng = Rng::new(small.seed);
    let (home, docs) = prepare(&small, dir.path(), &mut rng);
    let admin = Groundwork::open(&home).unwrap();
    assert!(admin.sync("kb", &mut ()).unwrap().failed.is_empty());
    assert!(!admin.index_status("kb").unwrap().ann);
    let corpus = Corpus::read(&home, &fingerprint);
    let tally = rounds(
        &small,
        &home,
        &docs,
        &corpus,
        &embedder,
        &mut rng,
        VectorPath::Exact,
    );
    assert_eq!(tally.quantized, 0);
    add(tally, &mut totals);

    // 2. 2,400 documents: first with the graph switched on from 1,000 chunks (wide allow-lists
    //    walk it), then with the default settings (no graph at this size; readers of 2,048+
    //    chunks go through the 8-bit scan).
    let large = Setup {
        name: "large",
        seed: 0x006c_6172_6765,
        documents: 2_400,
        acl_percent: 10,
        rounds: 2,
        cases_per_user: 150,
    };
    let mut rng = Rng::new(large.seed);
    let (home, docs) = prepare(&large, dir.path(), &mut rng);
    set_search_config(&home, 1_000, 300);
    let admin = Groundwork::open(&home).unwrap();
    assert!(admin.sync("kb", &mut ()).unwrap().failed.is_empty());
    assert!(
        admin.index_status("kb").unwrap().ann,
        "the graph is built above ann_min_chunks"
    );
    drop(admin);
    let corpus = Corpus::read(&home, &fingerprint);
    assert_eq!(corpus.chunks.len(), large.documents);
    let tally = rounds(
        &large,
        &home,
        &docs,
        &corpus,
        &embedder,
        &mut rng,
        VectorPath::Graph {
            filter_exact_max: 300,
        },
    );
    let recall = tally.ann_found as f64 / tally.ann_asked.max(1) as f64;
    assert!(tally.ann_asked > 100, "few graph searches: {}", tally.ann_asked);
    assert!(recall >= 0.95, "HNSW recall@k under allow-lists {recall:.3}");
    eprintln!("graph: recall@k {recall:.4} over {} asked", tally.ann_asked);
    add(tally, &mut totals);

    set_search_config(&home, 50_000, 20_000);
    assert!(!Groundwork::open(&home).unwrap().index_status("kb").unwrap().ann);
    let tally = rounds(
        &large,
        &home,
        &docs,
        &corpus,
        &embedder,
        &mut rng,
        VectorPath::Exact,
    );
    assert!(tally.quantized > 20, "few 8-bit scans: {}", tally.quantized);
    add(tally, &mut totals);

    assert!(totals.cases >= 10_000, "{} cases", totals.cases);
    assert!(
        totals.inconclusive * 4 < totals.cases,
        "{} of {} cases were not compared exactly",
        totals.inconclusive,
        totals.cases
    );
    assert!(
        totals.returned > totals.cases,
        "only {} chunks returned",
        totals.returned
    );
    eprintln!(
        "{} cases ({} compared by recall or size only), {} chunks returned, {} with something denied, \
         {} through the 8-bit scan; none leaked",
        totals.cases, totals.inconclusive, totals.returned, totals.denied, totals.quantized
    );
}

/// Concurrent searches go through the gathering embedder and get what they get alone; the
/// query cache (on here) answers a repeated query's vector without the model, keeps no
/// results, and so changes nothing about what a reader may see.
#[test]
fn concurrent_searches_gather_and_the_query_cache_leaves_access_alone() {
    let Some(_) = model_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    for (folder, words) in [("public", &WORDS[..15]), ("private", &WORDS[15..])] {
        std::fs::create_dir_all(docs.join(folder)).unwrap();
        for (i, word) in words.iter().enumerate() {
            let text = format!("The {word} policy: how {word} requests are filed and approved, number {i}.");
            std::fs::write(docs.join(folder).join(format!("{word}.txt")), text).unwrap();
        }
    }
    let home = dir.path().join("home");
    Groundwork::init(&home).unwrap();
    let config = home.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("query_cache_entries = 0"),
        "the default config names the cache, off"
    );
    std::fs::write(
        &config,
        text.replace("query_cache_entries = 0", "query_cache_entries = 64"),
    )
    .unwrap();
    let admin = Groundwork::open(&home).unwrap();
    admin.create_kb("kb", KnowledgeBaseConfig::default()).unwrap();
    admin
        .add_source("kb", docs.to_str().unwrap(), SourceConfig::default())
        .unwrap();
    assert!(admin.sync("kb", &mut ()).unwrap().failed.is_empty());
    admin.add_principal(PrincipalKind::User, "reader").unwrap();
    admin
        .add_grant(&NewGrant::read(
            Grantee::User("reader".to_owned()),
            docs.join("public").to_str().unwrap(),
        ))
        .unwrap();

    let request = |query: &str| SearchRequest {
        query: query.to_owned(),
        k: 5,
        search_type: Some(SearchType::Hybrid),
        filter: None,
    };
    let ranked = |handle: &Groundwork, query: &str| -> Vec<(String, f32)> {
        let response = handle.searcher("kb").unwrap().search(&request(query)).unwrap();
        response.hits.iter().map(|h| (h.uri.clone(), h.score)).collect()
    };
    // Eight distinct queries at once, then each again alone (the cache answers the second).
    let queries: Vec<String> = WORDS[..8]
        .iter()
        .map(|w| format!("how is {w} approved"))
        .collect();
    let together: Vec<Vec<(String, f32)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = queries
            .iter()
            .map(|q| {
                let admin = admin.clone();
                scope.spawn(move || ranked(&admin, q))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stats = admin.query_embedding_stats();
    assert_eq!(
        (stats.gathered_calls, stats.cache_misses, stats.cache_hits),
        (8, 8, 0)
    );
    assert_eq!(stats.batched_texts, 8);
    assert_eq!(stats.cache_capacity, 64);
    for (query, together) in queries.iter().zip(&together) {
        let alone = ranked(&admin, query);
        assert_eq!(alone.len(), together.len());
        for ((uri_a, score_a), (uri_b, score_b)) in alone.iter().zip(together) {
            assert_eq!(uri_a, uri_b, "{query}");
            assert!(
                (score_a - score_b).abs() <= NOISE,
                "{query}: {score_a} vs {score_b}"
            );
        }
    }
    let stats = admin.query_embedding_stats();
    assert_eq!((stats.cache_hits, stats.gathered_calls), (8, 8));

    // The reader's search of a cached query sees only what the reader may read.
    let mut reader = admin.clone();
    reader.act_as("reader").unwrap();
    let private = format!("how is {} approved", WORDS[20]);
    assert!(
        ranked(&admin, &private)
            .iter()
            .any(|(uri, _)| uri.contains("/private/"))
    );
    let seen = ranked(&reader, &private);
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|(uri, _)| uri.contains("/public/")), "{seen:?}");
    assert_eq!(admin.query_embedding_stats().cache_hits, 9);
}
