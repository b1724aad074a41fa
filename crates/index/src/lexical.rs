//! BM25 full-text index over chunks, backed by tantivy.
//!
//! One tantivy document per chunk: `chunk_id` and `doc_id` are u64 fast
//! fields (the collector reads them without touching the doc store) and the
//! text is analysed with an English pipeline (lowercase, ASCII folding, stop
//! words, Porter stemming). The text itself is not stored: the document store
//! owns it.
//!
//! Queries are never parsed with a query language. The raw string is run
//! through the same analyzer as the indexed text and turned into an OR of
//! term queries, so no user input can produce a syntax error.
//!
//! Each commit records the store watermark it reflects in tantivy's commit
//! payload, so a restarted process knows where to resume indexing.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery, Weight};
use tantivy::schema::{Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter,
    TextAnalyzer,
};
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader,
    TantivyDocument, Term,
};

use crate::topk::TopK;
use crate::{AllowedDocs, IndexError, Result, ScoredChunk, rank_order};

/// Bump when the schema or analyzer changes; a mismatch asks for a rebuild.
pub const LEXICAL_SCHEMA_VERSION: u32 = 1;

const TOKENIZER_NAME: &str = "groundwork_en";
const FIELD_CHUNK_ID: &str = "chunk_id";
const FIELD_DOC_ID: &str = "doc_id";
const FIELD_TEXT: &str = "text";
/// Indexing memory budget (tantivy's minimum per thread is 15 MB).
const WRITER_MEMORY_BYTES: usize = 50_000_000;
/// Long pasted queries add little beyond their first few hundred distinct
/// terms but cost one posting-list scan each.
const MAX_QUERY_TERMS: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Fields {
    chunk_id: Field,
    doc_id: Field,
    text: Field,
}

#[derive(Debug, Serialize, Deserialize)]
struct CommitPayload {
    schema_version: u32,
    watermark: u64,
}

fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let chunk_id = builder.add_u64_field(
        FIELD_CHUNK_ID,
        NumericOptions::default().set_indexed().set_fast().set_stored(),
    );
    let doc_id = builder.add_u64_field(FIELD_DOC_ID, NumericOptions::default().set_indexed().set_fast());
    // Positions are kept so phrase queries can be added without a rebuild.
    let text_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let text = builder.add_text_field(FIELD_TEXT, text_options);
    (
        builder.build(),
        Fields {
            chunk_id,
            doc_id,
            text,
        },
    )
}

fn english_analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        // Tokens this long are base64 blobs or hashes, not words.
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .dynamic();
    let builder = match StopWordFilter::new(Language::English) {
        Some(stop_words) => builder.filter_dynamic(stop_words),
        None => builder,
    };
    builder.filter_dynamic(Stemmer::new(Language::English)).build()
}

/// Persistent BM25 index. Searching is `&self` and thread-safe; writing goes
/// through a single [`LexicalWriter`] obtained from [`LexicalIndex::begin`].
pub struct LexicalIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl LexicalIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if
    /// needed. An index written with another schema yields
    /// [`IndexError::SchemaMismatch`]: delete the directory and rebuild.
    pub fn open_or_create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let directory = MmapDirectory::open(dir)?;
        let (schema, fields) = build_schema();
        let index = Index::open_or_create(directory, schema)?;
        Self::from_index(index, fields)
    }

    /// Volatile index for tests and throwaway use.
    pub fn open_in_ram() -> Result<Self> {
        let (schema, fields) = build_schema();
        Self::from_index(Index::create_in_ram(schema), fields)
    }

    fn from_index(index: Index, fields: Fields) -> Result<Self> {
        index.tokenizers().register(TOKENIZER_NAME, english_analyzer());
        if let Some(payload) = read_payload(&index)?
            && payload.schema_version != LEXICAL_SCHEMA_VERSION
        {
            return Err(IndexError::SchemaMismatch(format!(
                "index has schema version {}, this build expects {}",
                payload.schema_version, LEXICAL_SCHEMA_VERSION
            )));
        }
        // OnCommitWithDelay picks up commits from other processes; commits
        // made through this handle reload explicitly so they are visible
        // immediately.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        Ok(Self {
            index,
            reader,
            fields,
        })
    }

    /// Starts a write transaction. Fails with [`IndexError::Locked`] when
    /// another writer (in this or another process) is active.
    pub fn begin(&self) -> Result<LexicalWriter<'_>> {
        let writer = self
            .index
            .writer_with_num_threads::<TantivyDocument>(1, WRITER_MEMORY_BYTES)?;
        Ok(LexicalWriter { owner: self, writer })
    }

    /// Store sequence number reflected by the last commit (0 if none).
    pub fn watermark(&self) -> Result<u64> {
        Ok(read_payload(&self.index)?.map_or(0, |p| p.watermark))
    }

    /// Removes every chunk (for a full rebuild) and resets the watermark to 0.
    pub fn clear(&self) -> Result<()> {
        let writer = self.begin()?;
        writer.writer.delete_all_documents()?;
        writer.commit(0)
    }

    /// Makes the latest commit visible to searches now instead of after the
    /// reload delay.
    pub fn reload(&self) -> Result<()> {
        self.reader.reload()?;
        Ok(())
    }

    /// Number of live chunks visible to searches.
    pub fn num_chunks(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// BM25 top-`k` chunks for `query`, best first (ties by chunk id). With
    /// `allowed`, ranking happens among chunks of allowed documents only.
    /// Any string is accepted; one without indexable terms gives no results.
    pub fn search(&self, query: &str, k: usize, allowed: Option<&AllowedDocs>) -> Result<Vec<ScoredChunk>> {
        if k == 0 || allowed.is_some_and(AllowedDocs::is_empty) {
            return Ok(Vec::new());
        }
        let terms = self.analyze_query(query);
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .into_iter()
            .map(|term| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                (Occur::Should, q)
            })
            .collect();
        let query = BooleanQuery::new(clauses);
        let collector = ChunkCollector {
            k,
            allowed: allowed.cloned(),
        };
        let searcher = self.reader.searcher();
        Ok(searcher.search(&query, &collector)?)
    }

    fn analyze_query(&self, query: &str) -> Vec<Term> {
        let mut analyzer = match self.index.tokenizers().get(TOKENIZER_NAME) {
            Some(analyzer) => analyzer,
            None => english_analyzer(),
        };
        let mut seen = std::collections::HashSet::new();
        let mut terms = Vec::new();
        let mut stream = analyzer.token_stream(query);
        while let Some(token) = stream.next() {
            if terms.len() >= MAX_QUERY_TERMS {
                break;
            }
            // Repeated query words would otherwise be scored twice.
            if seen.insert(token.text.clone()) {
                terms.push(Term::from_field_text(self.fields.text, &token.text));
            }
        }
        terms
    }
}

fn read_payload(index: &Index) -> Result<Option<CommitPayload>> {
    let metas = index.load_metas()?;
    match metas.payload {
        None => Ok(None),
        Some(raw) => serde_json::from_str(&raw)
            .map(Some)
            .map_err(|e| IndexError::Corrupt(format!("lexical commit payload {raw:?}: {e}"))),
    }
}

/// Exclusive write transaction. Nothing is visible to readers until
/// [`commit`](Self::commit); dropping the writer discards pending changes.
pub struct LexicalWriter<'a> {
    owner: &'a LexicalIndex,
    writer: IndexWriter,
}

impl LexicalWriter<'_> {
    /// Removes every chunk of `doc_id` (applied at commit, before adds that
    /// follow it, so delete + re-add replaces a document atomically).
    pub fn delete_doc(&mut self, doc_id: u64) {
        self.writer
            .delete_term(Term::from_field_u64(self.owner.fields.doc_id, doc_id));
    }

    pub fn add_chunk(&mut self, chunk_id: u64, doc_id: u64, text: &str) -> Result<()> {
        let fields = self.owner.fields;
        let mut doc = TantivyDocument::default();
        doc.add_u64(fields.chunk_id, chunk_id);
        doc.add_u64(fields.doc_id, doc_id);
        doc.add_text(fields.text, text);
        self.writer.add_document(doc)?;
        Ok(())
    }

    /// Atomically publishes all changes together with the store `watermark`
    /// they reflect, then makes them visible to this handle's searches.
    pub fn commit(mut self, watermark: u64) -> Result<()> {
        let payload = serde_json::to_string(&CommitPayload {
            schema_version: LEXICAL_SCHEMA_VERSION,
            watermark,
        })
        .map_err(|e| IndexError::Corrupt(format!("cannot encode commit payload: {e}")))?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.owner.reader.reload()?;
        // Let background merges finish so segment count stays bounded and the
        // lock is released only when the writer is completely done.
        self.writer.wait_merging_threads()?;
        Ok(())
    }

    /// Discards pending changes (same as dropping the writer).
    pub fn rollback(mut self) -> Result<()> {
        self.writer.rollback()?;
        Ok(())
    }
}

/// Top-k collector that reads chunk/doc ids from fast fields and applies the
/// allow-list before a hit can enter the heap, so filtered top-k is exact.
struct ChunkCollector {
    k: usize,
    allowed: Option<AllowedDocs>,
}

struct ChunkSegmentCollector {
    chunk_ids: Column<u64>,
    doc_ids: Column<u64>,
    allowed: Option<AllowedDocs>,
    top: TopK<u64>,
}

impl ChunkSegmentCollector {
    /// Returns the score a later hit must exceed to matter (for BlockWAND).
    #[inline]
    fn offer(&mut self, doc: DocId, score: Score) -> Score {
        if let Some(threshold) = self.top.threshold()
            && score < threshold
        {
            return threshold.next_down();
        }
        let Some(doc_id) = self.doc_ids.first(doc) else {
            return self.pruning_threshold();
        };
        if let Some(allowed) = &self.allowed
            && !allowed.contains(doc_id)
        {
            return self.pruning_threshold();
        }
        let chunk_id = self.chunk_ids.first(doc).unwrap_or(u64::MAX);
        self.top.push(score, chunk_id, doc_id);
        self.pruning_threshold()
    }

    /// Just below the k-th score, so equal-scored hits still reach the chunk
    /// id tie-break instead of being pruned arbitrarily.
    fn pruning_threshold(&self) -> Score {
        self.top.threshold().map_or(Score::MIN, f32::next_down)
    }

    fn into_hits(self) -> Vec<ScoredChunk> {
        self.top
            .into_sorted_vec()
            .into_iter()
            .map(|c| ScoredChunk {
                chunk_id: c.key,
                doc_id: c.item,
                score: c.score,
            })
            .collect()
    }
}

impl SegmentCollector for ChunkSegmentCollector {
    type Fruit = Vec<ScoredChunk>;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.offer(doc, score);
    }

    fn harvest(self) -> Self::Fruit {
        self.into_hits()
    }
}

impl Collector for ChunkCollector {
    type Fruit = Vec<ScoredChunk>;
    type Child = ChunkSegmentCollector;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<ChunkSegmentCollector> {
        let fast = segment.fast_fields();
        Ok(ChunkSegmentCollector {
            chunk_ids: fast.u64(FIELD_CHUNK_ID)?,
            doc_ids: fast.u64(FIELD_DOC_ID)?,
            allowed: self.allowed.clone(),
            top: TopK::new(self.k),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<ScoredChunk>>) -> tantivy::Result<Vec<ScoredChunk>> {
        let mut all: Vec<ScoredChunk> = fruits.into_iter().flatten().collect();
        all.sort_by(rank_order);
        all.truncate(self.k);
        Ok(all)
    }

    /// Uses the pruning traversal (BlockWAND for OR queries) instead of the
    /// default exhaustive one; the threshold we return is the k-th best
    /// *allowed* score, so pruning never drops an allowed hit that belongs in
    /// the top-k.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<ScoredChunk>> {
        let mut child = self.for_segment(segment_ord, reader)?;
        match reader.alive_bitset() {
            Some(alive) => weight.for_each_pruning(Score::MIN, reader, &mut |doc, score| {
                if alive.is_deleted(doc) {
                    return child.pruning_threshold();
                }
                child.offer(doc, score)
            })?,
            None => weight.for_each_pruning(Score::MIN, reader, &mut |doc, score| child.offer(doc, score))?,
        }
        Ok(child.into_hits())
    }
}
