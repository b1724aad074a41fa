//! The store against a real SQLite file: schema versions, atomic document replacement, the
//! change log, the embedding cache and failures.

use groundwork_core::KnowledgeBaseConfig;
use groundwork_store::{ChunkWrite, DocumentChange, DocumentWrite, FailureWrite, Store, StoreError};
use serde_json::json;

fn document(source_id: i64, uri: &str, texts: &[&str]) -> DocumentWrite {
    DocumentWrite {
        warnings: Vec::new(),
        source_id,
        uri: uri.to_string(),
        object_version: Some("v1".into()),
        size: 10,
        modified_at: 1,
        content_sha256: format!("sha-{uri}-{}", texts.join("|")),
        sidecar_version: None,
        metadata: json!({"department": "hr"}).as_object().unwrap().clone(),
        format: "text".into(),
        encoding: None,
        parser: "test".into(),
        chunker: "test".into(),
        embedder: "test".into(),
        chunks: texts
            .iter()
            .map(|t| ChunkWrite {
                text: t.to_string(),
                text_sha256: groundwork_core::sha256_hex(t.as_bytes()),
                char_start: 0,
                char_end: t.chars().count(),
                page: None,
                heading: None,
                token_count: 1,
            })
            .collect(),
    }
}

#[test]
fn documents_replace_atomically_and_log_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert_eq!(store.schema_version().unwrap(), 6);
    let kb = store.create_kb("kb", &KnowledgeBaseConfig::default()).unwrap();
    assert!(matches!(
        store.create_kb("kb", &KnowledgeBaseConfig::default()),
        Err(StoreError::KbExists(_))
    ));
    let source = store
        .add_source(kb.id, "file:///docs/", &Default::default())
        .unwrap();

    store
        .apply(
            kb.id,
            &[DocumentChange::Upsert(document(
                source.id,
                "file:///docs/a",
                &["one", "two"],
            ))],
        )
        .unwrap();
    let states = store.document_states(source.id).unwrap();
    let a = &states["file:///docs/a"];
    assert_eq!(store.document_chunks(a.id).unwrap().len(), 2);
    assert_eq!(store.last_change_seq(kb.id).unwrap(), 1);

    // Replacing drops the old chunks in the same transaction.
    store
        .apply(
            kb.id,
            &[DocumentChange::Upsert(document(
                source.id,
                "file:///docs/a",
                &["three"],
            ))],
        )
        .unwrap();
    let chunks = store.document_chunks(a.id).unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
        ["three"]
    );
    assert_eq!(chunks[0].metadata["department"], "hr");

    // A failure keeps the last good chunks and records the failed version.
    store
        .apply(
            kb.id,
            &[DocumentChange::Failed(FailureWrite {
                source_id: source.id,
                uri: "file:///docs/a".into(),
                object_version: Some("v2".into()),
                sidecar_version: None,
                size: 1,
                modified_at: 2,
                error_code: "corrupt".into(),
                error_message: "bad bytes".into(),
            })],
        )
        .unwrap();
    assert_eq!(store.document_chunks(a.id).unwrap().len(), 1);
    assert_eq!(store.failed_documents(kb.id).unwrap()[0].1, "corrupt");
    assert_eq!(
        store.document_states(source.id).unwrap()["file:///docs/a"]
            .failed_version
            .as_deref(),
        Some("v2")
    );

    store.apply(kb.id, &[DocumentChange::Delete(a.id)]).unwrap();
    assert!(store.document_chunks(a.id).unwrap().is_empty());
    let (changed, newest) = store.changed_documents(kb.id, 1).unwrap();
    assert_eq!(changed, vec![a.id]);
    assert_eq!(newest, 3);
}

#[test]
fn a_failed_batch_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let kb = store.create_kb("kb", &KnowledgeBaseConfig::default()).unwrap();
    let source = store
        .add_source(kb.id, "file:///docs/", &Default::default())
        .unwrap();
    // The second change refers to a source that does not exist: the whole batch rolls back.
    let result = store.apply(
        kb.id,
        &[
            DocumentChange::Upsert(document(source.id, "file:///docs/a", &["one"])),
            DocumentChange::Upsert(document(source.id + 99, "file:///docs/b", &["two"])),
        ],
    );
    assert!(result.is_err());
    assert!(store.document_states(source.id).unwrap().is_empty());
    assert_eq!(store.last_change_seq(kb.id).unwrap(), 0);
}

#[test]
fn embedding_cache_round_trips_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    store
        .put_embeddings(
            "model-a",
            &[("h1".into(), vec![0.5, -1.25, 3.0]), ("h2".into(), vec![1.0])],
        )
        .unwrap();
    let cached = store.cached_embeddings("model-a", &["h1", "h2", "h3"]).unwrap();
    assert_eq!(cached["h1"], vec![0.5, -1.25, 3.0]);
    assert!(!cached.contains_key("h3"));
    assert!(store.cached_embeddings("model-b", &["h1"]).unwrap().is_empty());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

fn audit_entry(action: &str) -> groundwork_govern::audit::AuditEntry {
    groundwork_govern::audit::AuditEntry {
        at: 1,
        actor: "admin".into(),
        auth: "local".into(),
        action: action.into(),
        target: None,
        request: json!({"note": "mail ops@example.com"}),
        outcome: groundwork_govern::audit::Outcome::Ok,
        code: None,
        chunks: Vec::new(),
        models: Vec::new(),
        latency_ms: None,
    }
}

#[test]
fn governance_changes_commit_with_their_audit_record() {
    use groundwork_govern::access::{Grantee, NewGrant};
    use groundwork_store::PrincipalKind;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    // Migration 2 created the local administrator.
    let users = store.principals(PrincipalKind::User).unwrap();
    assert_eq!(users.len(), 1);
    assert!(users[0].admin && users[0].name == "admin");

    store
        .audited(
            |tx| Store::tx_add_principal(tx, PrincipalKind::User, "alice"),
            |_| audit_entry("user.add"),
        )
        .unwrap();
    // A failed change rolls back but is still audited.
    let failed = store.audited(
        |tx| {
            Store::tx_add_principal(tx, PrincipalKind::Group, "finance")?;
            Store::tx_add_member(tx, "finance", "nobody")
        },
        |_| audit_entry("group.add_member"),
    );
    assert!(matches!(failed, Err(StoreError::PrincipalNotFound(_))));
    assert!(
        store.principals(PrincipalKind::Group).unwrap().is_empty(),
        "rolled back"
    );
    let grant = store
        .audited(
            |tx| {
                Store::tx_add_grant(
                    tx,
                    &NewGrant {
                        expires_at: Some(5),
                        ..NewGrant::read(Grantee::User("alice".into()), "s3://b/x")
                    },
                )
            },
            |_| audit_entry("grant.add"),
        )
        .unwrap();
    assert_eq!(store.grants().unwrap(), vec![grant]);

    let mut rows = Vec::new();
    store
        .for_each_audit(|row| {
            rows.push(row.clone());
            true
        })
        .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["user.add", "group.add_member", "grant.add"]);
    assert!(
        rows.iter().all(|r| r.request.contains("[EMAIL]")),
        "masked before writing"
    );
    assert_eq!(rows[1].prev_hash, rows[0].hash);
    assert_eq!(store.audit_head().unwrap(), Some((3, rows[2].hash.clone())));

    // Append-only at the SQL level.
    let conn = rusqlite::Connection::open(dir.path().join("db")).unwrap();
    assert!(conn.execute("UPDATE audit_log SET actor = 'x'", []).is_err());
    assert!(conn.execute("DELETE FROM audit_log", []).is_err());
    // And the administrator cannot be removed.
    let removed = store.audited(
        |tx| Store::tx_remove_principal(tx, PrincipalKind::User, "admin"),
        |_| audit_entry("user.remove"),
    );
    assert!(matches!(removed, Err(StoreError::Refused(_))));
}

fn chained_actions(store: &Store) -> Vec<String> {
    let mut rows = Vec::new();
    store
        .for_each_audit(|row| {
            rows.push(row.clone());
            true
        })
        .unwrap();
    let mut verifier = groundwork_govern::audit::ChainVerifier::default();
    assert!(rows.iter().all(|row| verifier.push(row)), "the chain verifies");
    rows.into_iter().map(|r| r.action).collect()
}

#[test]
fn read_records_join_the_chain_in_the_order_they_were_made() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    store.append_read_audit(audit_entry("search")).unwrap();
    store.append_read_audit(audit_entry("ask")).unwrap();
    // A state change flushes the journal before it commits, so it lands after both reads.
    store
        .audited(
            |tx| Store::tx_add_principal(tx, groundwork_store::PrincipalKind::User, "alice"),
            |_| audit_entry("user.add"),
        )
        .unwrap();
    store.append_read_audit(audit_entry("search")).unwrap();
    assert_eq!(chained_actions(&store), ["search", "ask", "user.add", "search"]);
    let journal = dir.path().join("db.audit-journal");
    drop(store);
    let left: Vec<_> = std::fs::read_dir(&journal).unwrap().collect();
    assert!(left.is_empty(), "a closed store retires its journal: {left:?}");
}

#[test]
fn a_dead_process_journal_is_chained_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    drop(Store::open(&db).unwrap());
    // What a killed process leaves: complete lines, then one cut off mid-write.
    let journal = dir.path().join("db.audit-journal");
    std::fs::create_dir_all(&journal).unwrap();
    let mut text = String::new();
    for action in ["search", "ask"] {
        text.push_str(&serde_json::to_string(&audit_entry(action).mask()).unwrap());
        text.push('\n');
    }
    let cut = serde_json::to_string(&audit_entry("lost").mask()).unwrap();
    text.push_str(&cut[..cut.len() / 2]);
    std::fs::write(journal.join("4242-1.jsonl"), text).unwrap();

    let store = Store::open(&db).unwrap();
    assert_eq!(chained_actions(&store), ["search", "ask"]);
    assert!(std::fs::read_dir(&journal).unwrap().next().is_none());
    // Opening again chains nothing twice.
    drop(store);
    assert_eq!(chained_actions(&Store::open(&db).unwrap()), ["search", "ask"]);
}
