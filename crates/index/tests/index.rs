//! Integration tests for groundwork-index: lexical, vector, HNSW, fusion.

use std::collections::{HashMap, HashSet};

use groundwork_index::{
    AllowedDocs, HnswParams, IndexError, LexicalIndex, ScoredChunk, SearchType, VectorConfig, VectorIndex,
    clustered_vectors, rrf,
};

/// Deterministic test RNG (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

fn ids(hits: &[ScoredChunk]) -> Vec<u64> {
    hits.iter().map(|h| h.chunk_id).collect()
}

const WORDS: &[&str] = &[
    "protein",
    "folding",
    "neural",
    "network",
    "quantum",
    "entanglement",
    "graphene",
    "battery",
    "climate",
    "model",
    "genome",
    "sequencing",
    "catalyst",
    "polymer",
    "galaxy",
    "cluster",
    "enzyme",
    "kinetics",
    "tensor",
    "gradient",
];

fn random_text(rng: &mut Rng, words: usize) -> String {
    (0..words)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

// ---- lexical ----------------------------------------------------------------

#[test]
fn lexical_add_search_delete() {
    let index = LexicalIndex::open_in_ram().unwrap();
    let mut w = index.begin().unwrap();
    w.add_chunk(1, 10, "Protein folding simulations with neural networks")
        .unwrap();
    w.add_chunk(2, 10, "The weather was nice").unwrap();
    w.add_chunk(3, 20, "Folded proteins and their kinetics").unwrap();
    w.commit(5).unwrap();

    let hits = index.search("protein folding", 10, None).unwrap();
    // Stemming makes "Folded proteins" match "protein folding" too.
    assert_eq!(
        ids(&hits)[..2].iter().collect::<HashSet<_>>(),
        [1, 3].iter().collect()
    );
    assert_eq!(hits.len(), 2);
    let first = hits.iter().find(|h| h.chunk_id == 1).unwrap();
    assert_eq!(first.doc_id, 10);
    assert!(hits[0].score >= hits[1].score);

    let mut w = index.begin().unwrap();
    w.delete_doc(10);
    w.commit(6).unwrap();
    assert_eq!(ids(&index.search("protein", 10, None).unwrap()), vec![3]);
    assert_eq!(index.num_chunks(), 1);

    index.clear().unwrap();
    assert!(index.search("protein", 10, None).unwrap().is_empty());
    assert_eq!(index.watermark().unwrap(), 0);
}

#[test]
fn lexical_update_is_atomic_for_readers() {
    let index = LexicalIndex::open_in_ram().unwrap();
    let mut w = index.begin().unwrap();
    w.add_chunk(1, 7, "old graphene text").unwrap();
    w.commit(1).unwrap();

    let mut w = index.begin().unwrap();
    w.delete_doc(7);
    w.add_chunk(2, 7, "new graphene text").unwrap();
    // Before commit readers still see the old version, never an empty doc.
    assert_eq!(ids(&index.search("graphene", 10, None).unwrap()), vec![1]);
    w.commit(2).unwrap();
    assert_eq!(ids(&index.search("graphene", 10, None).unwrap()), vec![2]);

    // An uncommitted (dropped) writer changes nothing.
    let mut w = index.begin().unwrap();
    w.delete_doc(7);
    drop(w);
    assert_eq!(ids(&index.search("graphene", 10, None).unwrap()), vec![2]);
    assert_eq!(index.watermark().unwrap(), 2);
}

#[test]
fn lexical_watermark_survives_reopen_and_lock_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = LexicalIndex::open_or_create(dir.path()).unwrap();
        assert_eq!(index.watermark().unwrap(), 0);
        let mut w = index.begin().unwrap();
        w.add_chunk(1, 1, "enzyme kinetics").unwrap();
        // A second writer while the first is alive is refused, not a panic.
        assert!(matches!(index.begin(), Err(IndexError::Locked)));
        w.commit(42).unwrap();
    }
    let index = LexicalIndex::open_or_create(dir.path()).unwrap();
    assert_eq!(index.watermark().unwrap(), 42);
    assert_eq!(ids(&index.search("enzymes", 5, None).unwrap()), vec![1]);
}

#[test]
fn lexical_hostile_queries_do_not_error() {
    let index = LexicalIndex::open_in_ram().unwrap();
    let mut w = index.begin().unwrap();
    w.add_chunk(1, 1, "naïve Bayes classifier for COVID-19 data")
        .unwrap();
    w.commit(1).unwrap();
    let long = "a(b OR c:d) ".repeat(1000);
    let hostile = [
        "",
        "   ",
        "AND OR ((( :",
        "\"unterminated",
        "the of and a",
        "*:* -",
        "field:value^3~2",
        "\u{0}\u{FFFF}\u{1F600}",
        "日本語のクエリ",
        long.as_str(),
    ];
    for q in hostile {
        let hits = index.search(q, 10, None).unwrap();
        assert!(hits.len() <= 1, "query {q:?}");
    }
    assert!(index.search("the of and", 10, None).unwrap().is_empty());
    // Ascii folding + lowercasing make accents and case irrelevant.
    assert_eq!(ids(&index.search("NAIVE covid", 10, None).unwrap()), vec![1]);
}

#[test]
fn lexical_filtered_topk_matches_brute_force() {
    let index = LexicalIndex::open_in_ram().unwrap();
    let mut rng = Rng(7);
    let mut w = index.begin().unwrap();
    for chunk in 0..2_000u64 {
        let words = 3 + rng.below(20) as usize;
        w.add_chunk(chunk, chunk / 5, &random_text(&mut rng, words))
            .unwrap();
    }
    w.commit(1).unwrap();
    // A second commit gives several segments, exercising the merge path.
    let mut w = index.begin().unwrap();
    for chunk in 2_000..2_500u64 {
        w.add_chunk(chunk, chunk / 5, &random_text(&mut rng, 8)).unwrap();
    }
    w.commit(2).unwrap();

    for case in 0..40 {
        let query = random_text(&mut rng, 1 + case % 3);
        let k = 1 + rng.below(30) as usize;
        let allowed: AllowedDocs = (0..500u64).filter(|_| rng.below(10) < 2).collect();
        let all = index.search(&query, 100_000, None).unwrap();
        let expected: Vec<ScoredChunk> = all
            .iter()
            .filter(|h| allowed.contains(h.doc_id))
            .take(k)
            .copied()
            .collect();
        let got = index.search(&query, k, Some(&allowed)).unwrap();
        assert_eq!(ids(&got), ids(&expected), "case {case} query {query:?}");
        assert!(got.len() == k || got.len() == expected.len());
    }
}

// ---- vector -----------------------------------------------------------------

fn random_vectors(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim).map(|_| rng.unit()).collect()
}

/// Every allowed chunk with its exact cosine, best first (ties by chunk id).
fn brute_force(
    vectors: &[f32],
    dim: usize,
    live: &[(u64, u64)],
    query: &[f32],
    allowed: Option<&AllowedDocs>,
) -> Vec<(u64, f32)> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let qn = norm(query);
    let mut scored: Vec<(f32, u64)> = live
        .iter()
        .enumerate()
        .filter(|(_, (_, doc))| allowed.is_none_or(|a| a.contains(*doc)))
        .map(|(i, (chunk, _))| {
            let v = &vectors[i * dim..(i + 1) * dim];
            let dot: f32 = v.iter().zip(query).map(|(a, b)| a * b).sum();
            (dot / (norm(v) * qn), *chunk)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(score, c)| (c, score)).collect()
}

/// The exact search's contract against brute force: the top `k` of the allowed chunks, in
/// order, each with its exact score. Two chunks may swap places only when their exact scores
/// tie (within float noise of the summation order); none may be missing otherwise.
fn assert_same_ranking(got: &[ScoredChunk], truth: &[(u64, f32)], k: usize, context: &str) {
    const NOISE: f32 = 1e-5;
    let expected = &truth[..k.min(truth.len())];
    assert_eq!(got.len(), expected.len(), "{context}");
    let exact: HashMap<u64, f32> = truth.iter().copied().collect();
    let mut seen = HashSet::new();
    for (i, (hit, (want_id, want_score))) in got.iter().zip(expected).enumerate() {
        assert!(
            seen.insert(hit.chunk_id),
            "{context}: chunk {} twice",
            hit.chunk_id
        );
        let Some(&score) = exact.get(&hit.chunk_id) else {
            panic!("{context}: chunk {} is not allowed", hit.chunk_id);
        };
        assert!(
            (hit.score - score).abs() <= NOISE,
            "{context}: chunk {} scored {} but its exact cosine is {score}",
            hit.chunk_id,
            hit.score
        );
        assert!(
            hit.chunk_id == *want_id || (score - want_score).abs() <= NOISE,
            "{context}: rank {i} is chunk {} ({score}), brute force has {want_id} ({want_score})",
            hit.chunk_id
        );
    }
}

#[test]
fn vector_exact_matches_brute_force_with_filters() {
    let dim = 24;
    let mut rng = Rng(11);
    let n = 3_000;
    let vectors = random_vectors(&mut rng, n, dim);
    let live: Vec<(u64, u64)> = (0..n as u64).map(|c| (c * 3 + 1, c / 4)).collect();
    let mut index = VectorIndex::new(dim);
    for (i, (chunk, doc)) in live.iter().enumerate() {
        index
            .insert(*chunk, *doc, &vectors[i * dim..(i + 1) * dim])
            .unwrap();
    }
    assert_eq!(index.len(), n);
    for case in 0..60 {
        let query: Vec<f32> = (0..dim).map(|_| rng.unit()).collect();
        let k = 1 + rng.below(40) as usize;
        // 3% of the documents (f32 scan) or 80% (above the 8-bit code scan's minimum).
        let percent = if case % 4 == 3 { 80 } else { 3 };
        let allowed: Option<AllowedDocs> =
            (case % 2 == 1).then(|| (0..750u64).filter(|_| rng.below(100) < percent).collect());
        let truth = brute_force(&vectors, dim, &live, &query, allowed.as_ref());
        let got = index.search(&query, k, allowed.as_ref());
        assert_same_ranking(&got, &truth, k, &format!("case {case}"));
        assert!(
            got.iter()
                .all(|h| allowed.as_ref().is_none_or(|a| a.contains(h.doc_id)))
        );
    }
    // Wrong dimension / NaN queries give nothing rather than panicking.
    assert!(index.search(&[1.0; 3], 5, None).is_empty());
    assert!(index.search(&vec![f32::NAN; dim], 5, None).is_empty());
    assert!(index.insert(1, 1, &[1.0; 3]).is_err());
}

#[test]
fn vector_replace_and_remove() {
    let mut index = VectorIndex::new(3);
    index.insert(1, 100, &[1.0, 0.0, 0.0]).unwrap();
    index.insert(2, 100, &[0.0, 1.0, 0.0]).unwrap();
    index.insert(3, 200, &[0.0, 0.0, 1.0]).unwrap();
    // Replacing chunk 1 moves it.
    index.insert(1, 100, &[0.0, 0.0, 2.0]).unwrap();
    assert_eq!(index.len(), 3);
    let hits = index.search(&[0.0, 0.0, 1.0], 2, None);
    assert_eq!(ids(&hits), vec![1, 3]);
    assert!((hits[0].score - 1.0).abs() < 1e-6);
    assert_eq!(index.remove_doc(100), 2);
    assert_eq!(index.len(), 1);
    assert_eq!(ids(&index.search(&[0.0, 0.0, 1.0], 5, None)), vec![3]);
}

fn recall(index: &VectorIndex, queries: &[f32], dim: usize, k: usize, allowed: Option<&AllowedDocs>) -> f64 {
    let mut hits = 0;
    let mut total = 0;
    for q in queries.chunks_exact(dim) {
        let truth: HashSet<u64> = ids(&index.search_exact(q, k, allowed)).into_iter().collect();
        let got = index.search(q, k, allowed);
        assert_eq!(got.len(), truth.len(), "filtered ANN top-k must be full");
        hits += got.iter().filter(|h| truth.contains(&h.chunk_id)).count();
        total += truth.len();
    }
    hits as f64 / total as f64
}

#[test]
fn hnsw_recall_on_clustered_vectors_and_persistence() {
    // Dimension kept small because this crate's tests run unoptimised.
    let (n, dim, k) = (20_000, 32, 10);
    let (data, queries) = clustered_vectors(n, 100, dim, 3);
    let config = VectorConfig {
        exact_threshold: 1_000,
        filter_exact_max: 500,
        hnsw: HnswParams {
            m: 16,
            ef_construction: 64,
            ef_search: 64,
            seed: 1,
        },
        ..VectorConfig::default()
    };
    let mut index = VectorIndex::with_config(dim, config);
    for (i, v) in data.chunks_exact(dim).enumerate() {
        index.insert(i as u64, (i / 10) as u64, v).unwrap();
    }
    index.build_ann();
    assert!(index.has_ann());
    let r = recall(&index, &queries, dim, k, None);
    assert!(r >= 0.98, "recall@10 = {r}");

    // Filter applied during traversal (30% of docs allowed) stays full and accurate.
    let allowed: AllowedDocs = (0..2_000u64).filter(|d| d % 10 < 3).collect();
    let r = recall(&index, &queries, dim, k, Some(&allowed));
    assert!(r >= 0.95, "filtered recall@10 = {r}");
    // Very selective filter goes through the exact path.
    let allowed: AllowedDocs = [5u64, 77, 1234].into_iter().collect();
    assert_eq!(recall(&index, &queries[..dim * 5], dim, k, Some(&allowed)), 1.0);

    // Deletes + fresh inserts after the build are honoured without rebuild.
    index.remove_doc(0);
    index.insert(999_999, 5_000, &queries[..dim]).unwrap();
    let hits = index.search(&queries[..dim], k, None);
    assert_eq!(hits[0].chunk_id, 999_999);
    assert!(hits.iter().all(|h| h.doc_id != 0));

    // Save/load round-trip keeps graph and answers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors.bin");
    index.save(&path, 77).unwrap();
    let (loaded, watermark) = VectorIndex::load_with_config(&path, config).unwrap();
    assert_eq!(watermark, 77);
    assert_eq!(loaded.len(), index.len());
    assert!(loaded.has_ann());
    for q in queries.chunks_exact(dim).take(20) {
        assert_eq!(ids(&loaded.search(q, k, None)), ids(&index.search(q, k, None)));
    }

    // Corrupt / truncated files are rejected with a typed error.
    let bytes = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.bin");
    for cut in [0, 7, 40, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        assert!(
            matches!(VectorIndex::load(&bad), Err(IndexError::Corrupt(_))),
            "cut {cut}"
        );
    }
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0x40;
    std::fs::write(&bad, &flipped).unwrap();
    assert!(matches!(VectorIndex::load(&bad), Err(IndexError::Corrupt(_))));
    // A huge slot count in the header must not trigger a huge allocation.
    let mut huge = bytes.clone();
    huge[28..36].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&bad, &huge).unwrap();
    assert!(matches!(VectorIndex::load(&bad), Err(IndexError::Corrupt(_))));
}

#[test]
fn vector_save_load_without_graph() {
    let mut index = VectorIndex::new(4);
    index.insert(1, 1, &[1.0, 2.0, 3.0, 4.0]).unwrap();
    index.insert(2, 1, &[4.0, 3.0, 2.0, 1.0]).unwrap();
    index.insert(2, 2, &[0.0, 3.0, 2.0, 1.0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.bin");
    index.save(&path, 9).unwrap();
    let (loaded, wm) = VectorIndex::load(&path).unwrap();
    assert_eq!(wm, 9);
    assert_eq!(loaded.len(), 2);
    let q = [0.5, 1.0, 1.0, 0.0];
    assert_eq!(loaded.search(&q, 5, None), index.search(&q, 5, None));
}

// ---- fusion -----------------------------------------------------------------

fn hit(chunk_id: u64) -> ScoredChunk {
    ScoredChunk {
        chunk_id,
        doc_id: chunk_id / 10,
        score: 0.0,
    }
}

#[test]
fn rrf_orders_by_weighted_reciprocal_rank() {
    let lexical = [hit(1), hit(2), hit(3)];
    let semantic = [hit(3), hit(4), hit(1)];
    let fused = rrf(&lexical, &semantic, 60.0, 1.0, 1.0, 10);
    // 1: 1/61 + 1/63, 3: 1/63 + 1/61 -> tie, broken by chunk id.
    assert_eq!(ids(&fused), vec![1, 3, 2, 4]);
    assert!((fused[0].score - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-7);
    assert_eq!(fused[2].doc_id, 0);

    let fused = rrf(&lexical, &semantic, 60.0, 0.0, 1.0, 2);
    assert_eq!(ids(&fused), vec![3, 4]);
    assert!(rrf(&[], &[], 60.0, 1.0, 1.0, 5).is_empty());
}

#[test]
fn search_type_parses_and_serialises() {
    assert_eq!("Hybrid".parse::<SearchType>().unwrap(), SearchType::Hybrid);
    assert_eq!("lexical".parse::<SearchType>().unwrap(), SearchType::Lexical);
    assert!("fuzzy".parse::<SearchType>().is_err());
    assert_eq!(
        serde_json::to_string(&SearchType::Semantic).unwrap(),
        "\"semantic\""
    );
    let t: SearchType = serde_json::from_str("\"lexical\"").unwrap();
    assert_eq!(t, SearchType::Lexical);
}
