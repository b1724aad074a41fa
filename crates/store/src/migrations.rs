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
    // 2: governance — principals, memberships, API tokens, grants, the audit chain.
    r#"
    CREATE TABLE principals (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
        name TEXT NOT NULL,
        admin INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        UNIQUE (kind, name)
    );
    -- The local administrator the CLI acts as; existing single-user homes keep working.
    INSERT INTO principals (kind, name, admin, created_at)
        VALUES ('user', 'admin', 1, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
    CREATE TABLE memberships (
        group_id INTEGER NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX memberships_by_user ON memberships(user_id);
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
        name TEXT,
        secret_sha256 TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        last_used_at INTEGER
    );
    CREATE TABLE grants (
        id INTEGER PRIMARY KEY,
        principal_id INTEGER NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
        location TEXT NOT NULL,
        level TEXT NOT NULL CHECK (level IN ('read', 'readwrite')),
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        auth TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        request TEXT NOT NULL,
        outcome TEXT NOT NULL,
        code TEXT,
        chunks TEXT NOT NULL,
        models TEXT NOT NULL,
        latency_ms REAL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_by_actor ON audit_log(actor, seq);
    CREATE INDEX audit_by_action ON audit_log(action, seq);
    CREATE INDEX audit_by_time ON audit_log(at);
    -- Append-only: the store refuses to rewrite history. (Someone with the file can drop these
    -- triggers; the hash chain and the external anchor are what catch that.)
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
    "#,
    // 3: the read-audit journal's progress: how far into each journal file the chain has got.
    r#"
    CREATE TABLE audit_journal (
        file TEXT PRIMARY KEY,
        offset INTEGER NOT NULL
    );
    "#,
    // 4: tables — discovered tables with their definitions, versions and profiles; the history
    // of their schema changes; data-quality rules and runs; row filters and column masks on
    // grants.
    r#"
    ALTER TABLE grants ADD COLUMN row_filter TEXT;
    ALTER TABLE grants ADD COLUMN masks TEXT;
    CREATE TABLE tables (
        id INTEGER PRIMARY KEY,
        kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        location TEXT NOT NULL,
        -- Changes when the data may have changed; version_no counts schema changes.
        version TEXT NOT NULL,
        version_no INTEGER NOT NULL,
        schema_hash TEXT NOT NULL,
        def TEXT NOT NULL,
        profile TEXT,
        profiled_version TEXT,
        profiled_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (kb_id, name)
    );
    CREATE INDEX tables_by_source ON tables(source_id);
    CREATE TABLE table_versions (
        id INTEGER PRIMARY KEY,
        table_id INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,
        version_no INTEGER NOT NULL,
        version TEXT NOT NULL,
        schema_hash TEXT NOT NULL,
        columns TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE TABLE quality_rules (
        table_id INTEGER PRIMARY KEY REFERENCES tables(id) ON DELETE CASCADE,
        ruleset TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE quality_runs (
        id INTEGER PRIMARY KEY,
        table_id INTEGER NOT NULL REFERENCES tables(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        version TEXT NOT NULL,
        status TEXT NOT NULL,
        blocking_failed INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        outcomes TEXT NOT NULL
    );
    CREATE INDEX quality_runs_by_table ON quality_runs(table_id, at);
    "#,
    // 5: text-to-SQL — descriptions of tables and columns (written by people or generated by a
    // model; a person's wins) and verified example questions with their SQL.
    r#"
    CREATE TABLE table_descriptions (
        kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
        table_name TEXT NOT NULL,
        -- '' describes the table itself.
        column_name TEXT NOT NULL DEFAULT '',
        -- 'person' or 'generated'.
        origin TEXT NOT NULL,
        text TEXT NOT NULL,
        -- The principal who wrote it, or the model that generated it.
        author TEXT NOT NULL,
        -- For generated descriptions: the table version they were written from.
        table_version TEXT,
        at INTEGER NOT NULL,
        PRIMARY KEY (kb_id, table_name, column_name, origin)
    );
    CREATE TABLE sql_examples (
        id INTEGER PRIMARY KEY,
        kb_id INTEGER NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
        question TEXT NOT NULL,
        sql TEXT NOT NULL,
        -- JSON array of the table names the SQL reads.
        tables TEXT NOT NULL,
        added_by TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX sql_examples_by_kb ON sql_examples(kb_id);
    "#,
    // 6: what the parser warned about on an indexed document (JSON array; NULL when nothing).
    r#"
    ALTER TABLE documents ADD COLUMN warnings TEXT;
    "#,
];
