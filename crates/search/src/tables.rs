//! Table discovery: which tables answer a question, found by hybrid search over table cards
//! (name, description, columns with types, descriptions and frequent values, verified example
//! questions), ranked with the signals a catalogue has.
//!
//! Invariant: only tables in the caller's allow-list are candidates, decided before ranking
//! (both retrievers rank inside it), as for documents. Everything else here is relevance:
//! - each card is several passages (the table itself, one per column, one per example
//!   question), searched by BM25 and by meaning; a table scores by its best passages;
//! - the two retrievers are fused by reciprocal rank;
//! - tables of the namespace (database, source) the best matches come from are lifted, since
//!   the tables a question needs live together;
//! - catalogue signals multiply the score: descriptions people wrote, verified examples,
//!   trusted data quality.

use groundwork_index::{AllowedDocs, IndexError, LexicalIndex, ScoredChunk, VectorIndex};
use serde::Serialize;
use std::collections::HashMap;

/// One column as a card shows it.
#[derive(Debug, Clone, Default)]
pub struct CardColumn {
    pub name: String,
    pub data_type: String,
    pub description: String,
    /// Frequent values (low-cardinality columns).
    pub values: Vec<String>,
}

/// Everything a table is known by.
#[derive(Debug, Clone, Default)]
pub struct TableCard {
    pub id: u64,
    pub name: String,
    /// The database or source the table belongs to (`db` of `db.table`).
    pub namespace: String,
    pub description: String,
    pub columns: Vec<CardColumn>,
    /// Verified example questions whose SQL reads this table.
    pub examples: Vec<String>,
    /// Catalogue signals, as a multiplier around 1 (people's descriptions, verified examples,
    /// trusted quality > 1; a failed blocking rule < 1).
    pub prior: f32,
}

/// Splits identifiers into words: `FreeMealCount_K12` → `free meal count k12`.
pub fn words(identifier: &str) -> String {
    let mut out = String::with_capacity(identifier.len() + 8);
    let mut previous: Option<char> = None;
    for c in identifier.chars() {
        let boundary = match previous {
            Some(p) => p.is_lowercase() && c.is_uppercase(),
            None => false,
        };
        if !c.is_alphanumeric() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else {
            if boundary && !out.ends_with(' ') {
                out.push(' ');
            }
            out.extend(c.to_lowercase());
        }
        previous = Some(c);
    }
    out.trim().to_owned()
}

/// What a passage of a card is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passage {
    Table,
    Column(usize),
    Example(usize),
}

/// The passages of a card, as text for both retrievers.
fn passages(card: &TableCard) -> Vec<(Passage, String)> {
    let table_words = words(card.name.rsplit('.').next().unwrap_or(&card.name));
    let mut out = Vec::with_capacity(card.columns.len() + 1 + card.examples.len());
    let column_names: Vec<String> = card.columns.iter().map(|c| words(&c.name)).collect();
    out.push((
        Passage::Table,
        format!(
            "{table_words} ({}). {} Columns: {}.",
            words(&card.namespace),
            card.description,
            column_names.join(", ")
        ),
    ));
    for (i, column) in card.columns.iter().enumerate() {
        let mut text = format!("{table_words} {}", column_names[i]);
        if !column.description.is_empty() && words(&column.description) != column_names[i] {
            text.push_str(": ");
            text.push_str(&column.description);
        }
        if !column.values.is_empty() {
            text.push_str(". Values: ");
            text.push_str(&column.values.join(", "));
        }
        out.push((Passage::Column(i), text));
    }
    for (i, example) in card.examples.iter().enumerate() {
        out.push((Passage::Example(i), example.clone()));
    }
    out
}

/// A table found for a question.
#[derive(Debug, Clone, Serialize)]
pub struct TableHit {
    pub id: u64,
    pub name: String,
    pub score: f32,
    /// The columns whose passages matched, best first.
    pub matched_columns: Vec<String>,
    /// Why it ranked: which signals contributed.
    pub why: Vec<String>,
}

/// How ranking weighs its parts.
#[derive(Debug, Clone, Copy)]
pub struct TableRanking {
    pub rrf_k: f32,
    pub lexical_weight: f32,
    pub semantic_weight: f32,
    /// How much a table's namespace's strength lifts it (0 turns it off).
    pub namespace_weight: f32,
    /// Passages taken from each retriever.
    pub depth: usize,
}

impl Default for TableRanking {
    fn default() -> Self {
        TableRanking {
            rrf_k: 10.0,
            lexical_weight: 1.0,
            semantic_weight: 1.0,
            namespace_weight: 0.6,
            depth: 400,
        }
    }
}

/// Turns passage texts into vectors, one per text in order.
pub type EmbedPassages<'a> = dyn FnMut(&[&str]) -> Result<Vec<Vec<f32>>, String> + 'a;

/// The searchable cards of one catalogue.
pub struct TableIndex {
    cards: HashMap<u64, TableCard>,
    /// Passage id → (table id, passage).
    passages: Vec<(u64, Passage)>,
    lexical: LexicalIndex,
    vectors: VectorIndex,
}

impl TableIndex {
    /// Indexes `cards`; `embed` turns passage texts into vectors (one per text, same order).
    pub fn build(
        cards: Vec<TableCard>,
        dimension: usize,
        embed: &mut EmbedPassages<'_>,
    ) -> Result<TableIndex, String> {
        let lexical = LexicalIndex::open_in_ram().map_err(|e: IndexError| e.to_string())?;
        let mut vectors = VectorIndex::new(dimension);
        let mut all = Vec::new();
        let mut texts = Vec::new();
        {
            let mut writer = lexical.begin().map_err(|e| e.to_string())?;
            for card in &cards {
                for (passage, text) in passages(card) {
                    let id = all.len() as u64;
                    writer.add_chunk(id, card.id, &text).map_err(|e| e.to_string())?;
                    all.push((card.id, passage));
                    texts.push(text);
                }
            }
            writer.commit(1).map_err(|e| e.to_string())?;
        }
        lexical.reload().map_err(|e| e.to_string())?;
        for (start, batch) in texts.chunks(256).enumerate().map(|(i, b)| (i * 256, b)) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let embedded = embed(&refs)?;
            for (offset, vector) in embedded.iter().enumerate() {
                let id = (start + offset) as u64;
                vectors
                    .insert(id, all[id as usize].0, vector)
                    .map_err(|e| e.to_string())?;
            }
        }
        if vectors.len() >= vectors.config().exact_threshold {
            vectors.build_ann();
        }
        Ok(TableIndex {
            cards: cards.into_iter().map(|c| (c.id, c)).collect(),
            passages: all,
            lexical,
            vectors,
        })
    }

    pub fn len(&self) -> usize {
        self.cards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cards.is_empty()
    }

    /// The `k` best tables for `question` among `allowed` (`None`: all), by hybrid relevance
    /// and catalogue signals.
    pub fn search(
        &self,
        question: &str,
        vector: Option<&[f32]>,
        k: usize,
        allowed: Option<&AllowedDocs>,
        ranking: &TableRanking,
    ) -> Result<Vec<TableHit>, String> {
        let lexical = self
            .lexical
            .search(question, ranking.depth, allowed)
            .map_err(|e| e.to_string())?;
        let semantic = match vector {
            Some(v) => self.vectors.search(v, ranking.depth, allowed),
            None => Vec::new(),
        };
        // Per retriever, a table ranks by its best passage; the second best adds a little (a
        // table matching on several columns beats one matching on one).
        let mut fused: HashMap<u64, f32> = HashMap::new();
        let mut matched: HashMap<u64, Vec<(f32, usize)>> = HashMap::new();
        for (hits, weight) in [
            (&lexical, ranking.lexical_weight),
            (&semantic, ranking.semantic_weight),
        ] {
            for (rank, (table, strength)) in self.table_ranking(hits, &mut matched).into_iter().enumerate() {
                *fused.entry(table).or_default() +=
                    weight * (1.0 / (ranking.rrf_k + rank as f32 + 1.0)) * strength;
            }
        }
        // Namespace prior: the tables a question needs live together.
        let mut by_namespace: HashMap<&str, f32> = HashMap::new();
        for (table, score) in &fused {
            let namespace = self.cards[table].namespace.as_str();
            let entry = by_namespace.entry(namespace).or_default();
            *entry = entry.max(*score);
        }
        let best = by_namespace
            .values()
            .copied()
            .fold(0.0f32, f32::max)
            .max(f32::EPSILON);
        let mut scored: Vec<(u64, f32, Vec<String>)> = fused
            .into_iter()
            .map(|(table, score)| {
                let card = &self.cards[&table];
                let namespace_strength = by_namespace[card.namespace.as_str()] / best;
                let mut why = Vec::new();
                let mut total = score;
                if ranking.namespace_weight > 0.0 {
                    total += ranking.namespace_weight * namespace_strength * score.max(best * 0.1);
                    if namespace_strength > 0.99 {
                        why.push(format!("in `{}`, where the best matches are", card.namespace));
                    }
                }
                if (card.prior - 1.0).abs() > f32::EPSILON {
                    total *= card.prior;
                    why.push(format!("catalogue signals ×{:.2}", card.prior));
                }
                (table, total, why)
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        Ok(scored
            .into_iter()
            .map(|(table, score, mut why)| {
                let card = &self.cards[&table];
                let mut columns = matched.remove(&table).unwrap_or_default();
                columns.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mut names: Vec<String> = Vec::new();
                for (_, i) in columns {
                    let name = card.columns[i].name.clone();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                names.truncate(5);
                if !names.is_empty() {
                    why.insert(0, format!("columns matched: {}", names.join(", ")));
                }
                TableHit {
                    id: table,
                    name: card.name.clone(),
                    score,
                    matched_columns: names,
                    why,
                }
            })
            .collect())
    }

    /// Tables ranked by their passages in one retriever's hits, with a strength factor.
    fn table_ranking(
        &self,
        hits: &[ScoredChunk],
        matched: &mut HashMap<u64, Vec<(f32, usize)>>,
    ) -> Vec<(u64, f32)> {
        let mut seen: HashMap<u64, usize> = HashMap::new();
        let mut order: Vec<(u64, f32)> = Vec::new();
        let top = hits.first().map_or(1.0, |h| h.score.max(f32::EPSILON));
        for hit in hits {
            let (table, passage) = self.passages[hit.chunk_id as usize];
            if let Passage::Column(i) = passage {
                matched.entry(table).or_default().push((hit.score / top, i));
            }
            let count = seen.entry(table).or_insert(0);
            *count += 1;
            if *count == 1 {
                order.push((table, 1.0));
            } else if *count == 2
                && let Some(entry) = order.iter_mut().find(|(t, _)| *t == table)
            {
                entry.1 += 0.25 * (hit.score / top).clamp(0.0, 1.0);
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_words() {
        assert_eq!(words("FreeMealCount_K12"), "free meal count k12");
        assert_eq!(words("`Enrollment (K-12)`"), "enrollment k 12");
        assert_eq!(words("customer_id"), "customer id");
        assert_eq!(words("transactions_1k"), "transactions 1k");
    }
}
