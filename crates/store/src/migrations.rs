//! Versioned schema. Each migration runs once, in order, inside a transaction; the version
//! reached is kept in SQLite's `user_version`, so an older binary refuses a newer store instead
//! of misreading it.

/// Schema migrations, index `i` takes the store from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: knowledge bases, sources, documents, chunks, embedding cache, change log, sync runs.
    r#"
    CREATE TABLE knowledge_bases (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
        uri TEXT NOT NULL,
        config TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (kb_id, uri)
    );
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        uri TEXT NOT NULL,
        -- What the indexed chunks were extracted from (NULL until a version parsed).
        object_version TEXT,
        size INTEGER,
        modified_at INTEGER,
        content_sha256 TEXT,
        sidecar_version TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        format TEXT,
        encoding TEXT,
        parser TEXT,
        chunker TEXT,
        embedder TEXT,
        -- The newest version that failed to parse, with why; cleared by a successful parse.
        failed_version TEXT,
        failed_sidecar_version TEXT,
        error_code TEXT,
        error_message TEXT,
        updated_at INTEGER NOT NULL,
        UNIQUE (kb_id, uri)
    );
    CREATE INDEX documents_by_source ON documents(source_id);
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        kb_id INTEGER NOT NULL,
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        text_sha256 TEXT NOT NULL,
        char_start INTEGER NOT NULL,
        char_end INTEGER NOT NULL,
        page INTEGER,
        heading TEXT,
        token_count INTEGER NOT NULL
    );
    CREATE INDEX chunks_by_document ON chunks(document_id);
    CREATE INDEX chunks_by_kb ON chunks(kb_id);
    -- Keyed by (model fingerprint, text hash): a re-sync never re-embeds unchanged text.
    CREATE TABLE embeddings (
        model TEXT NOT NULL,
        text_sha256 TEXT NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (model, text_sha256)
    ) WITHOUT ROWID;
    -- Derived indexes replay this log past the sequence they have committed.
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kb_id INTEGER NOT NULL,
        document_id INTEGER NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('upsert', 'delete'))
    );
    CREATE INDEX changes_by_kb ON changes(kb_id, seq);
    CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY,
        kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        status TEXT NOT NULL,
        report TEXT
    );
    "#,
];
