//! Principals, memberships, API tokens, grants and the audit chain.
//!
//! Every state change here takes an [`AuditEntry`] and appends its record in the *same*
//! transaction (see [`Store::audited`]): either both the change and its record are durable, or
//! neither is. A failed change is still audited, with its error, in a transaction of its own.

use groundwork_core::UnixMillis;
use groundwork_govern::access::{Grant, Grantee, Level, NewGrant};
use groundwork_govern::audit::{AuditEntry, AuditRow};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::audit_journal::ReadAuditJournal;
use crate::chain::{AUDIT_COLUMNS, append_audit, audit_row, chain_rows};
use crate::error::{Result, StoreError};
use crate::sql::write_transaction;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    Group,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Principal {
    pub id: i64,
    pub kind: PrincipalKind,
    pub name: String,
    pub admin: bool,
    pub created_at: UnixMillis,
    /// Groups of a user, members of a group.
    pub related: Vec<String>,
}

/// A stored API token (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub name: Option<String>,
    #[serde(skip)]
    pub secret_sha256: String,
    pub created_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
    pub last_used_at: Option<UnixMillis>,
}

/// Filters for [`Store::query_audit`]; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    /// Records whose retrieved chunks came from this document URI.
    pub document_uri: Option<String>,
    pub after_seq: Option<i64>,
    pub limit: Option<usize>,
}

fn principal_id(tx: &Transaction<'_>, kind: PrincipalKind, name: &str) -> Result<i64> {
    tx.query_row(
        "SELECT id FROM principals WHERE kind = ?1 AND name = ?2",
        params![kind.as_str(), name],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::PrincipalNotFound(format!("{} `{name}`", kind.as_str())))
}

impl Store {
    /// Runs `change` in a transaction and appends the audit record that `describe` builds from
    /// its result — in the same transaction when it succeeded, in a fresh one when it failed
    /// (the failed change rolls back; its record still lands).
    pub fn audited<T>(
        &self,
        change: impl FnOnce(&Transaction<'_>) -> Result<T>,
        describe: impl FnOnce(&Result<T>) -> AuditEntry,
    ) -> Result<T> {
        // Reads recorded before this change are chained before it.
        self.flush_read_audit()?;
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        let result = change(&tx);
        let entry = describe(&result);
        match result {
            Ok(value) => {
                append_audit(&tx, entry)?;
                tx.commit()?;
                Ok(value)
            }
            Err(error) => {
                drop(tx);
                let tx = write_transaction(&mut conn)?;
                append_audit(&tx, entry)?;
                tx.commit()?;
                Err(error)
            }
        }
    }

    /// Appends one audit record on its own (denials, failed authentications, operations whose
    /// engines committed their own changes), durably: the commit waits for the disk.
    pub fn append_audit(&self, entry: AuditEntry) -> Result<AuditRow> {
        self.flush_read_audit()?;
        let mut conn = self.conn();
        let tx = write_transaction(&mut conn)?;
        let row = append_audit(&tx, entry)?;
        tx.commit()?;
        Ok(row)
    }

    /// Records a read (a search, an answer): masks it and journals it, returning once the OS
    /// holds it; it joins the hash chain within the journal's flush interval, or as soon as
    /// anyone in this process reads the chain. See `audit_journal` for why a read is recorded
    /// this way and why a kill cannot lose it. State changes and their records always commit
    /// into the chain directly, fully synced.
    pub fn append_read_audit(&self, entry: AuditEntry) -> Result<()> {
        let masked = entry.mask();
        let mut journal = self.read_audit.lock().unwrap_or_else(|p| p.into_inner());
        if journal.is_none() {
            *journal = Some(ReadAuditJournal::open(self.path(), chain_rows)?);
        }
        journal.as_ref().expect("opened above").append(masked)
    }

    /// Chains every read record this process has journalled (before anyone reads the chain).
    pub fn flush_read_audit(&self) -> Result<()> {
        let journal = self.read_audit.lock().unwrap_or_else(|p| p.into_inner());
        match journal.as_ref() {
            Some(journal) => journal.flush(),
            None => Ok(()),
        }
    }

    pub fn audit_head(&self) -> Result<Option<(i64, String)>> {
        self.flush_read_audit()?;
        Ok(self
            .conn()
            .query_row(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    pub fn audit_record(&self, seq: i64) -> Result<Option<AuditRow>> {
        self.flush_read_audit()?;
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq = ?1"),
                [seq],
                audit_row,
            )
            .optional()?)
    }

    /// Streams every record in sequence order until `f` returns false.
    pub fn for_each_audit(&self, mut f: impl FnMut(&AuditRow) -> bool) -> Result<()> {
        self.flush_read_audit()?;
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if !f(&audit_row(row)?) {
                break;
            }
        }
        Ok(())
    }

    pub fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRow>> {
        self.flush_read_audit()?;
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, value: rusqlite::types::Value| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(actor) = &query.actor {
            arg(&mut sql, " AND actor = ?", actor.clone().into());
        }
        if let Some(action) = &query.action {
            arg(&mut sql, " AND action = ?", action.clone().into());
        }
        if let Some(since) = query.since {
            arg(&mut sql, " AND at >= ?", since.into());
        }
        if let Some(until) = query.until {
            arg(&mut sql, " AND at < ?", until.into());
        }
        if let Some(after) = query.after_seq {
            arg(&mut sql, " AND seq > ?", after.into());
        }
        if let Some(uri) = &query.document_uri {
            arg(
                &mut sql,
                " AND EXISTS (SELECT 1 FROM json_each(audit_log.chunks) AS c WHERE json_extract(c.value, '$.document_uri') = ?)",
                uri.clone().into(),
            );
        }
        sql.push_str(" ORDER BY seq");
        if let Some(limit) = query.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), audit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // --- principals -----------------------------------------------------------------------

    pub fn tx_add_principal(tx: &Transaction<'_>, kind: PrincipalKind, name: &str) -> Result<Principal> {
        let created_at = groundwork_core::now_millis();
        let inserted = tx.execute(
            "INSERT INTO principals (kind, name, admin, created_at) VALUES (?1, ?2, 0, ?3)
             ON CONFLICT (kind, name) DO NOTHING",
            params![kind.as_str(), name, created_at],
        )?;
        if inserted == 0 {
            return Err(StoreError::PrincipalExists(format!("{} `{name}`", kind.as_str())));
        }
        Ok(Principal {
            id: tx.last_insert_rowid(),
            kind,
            name: name.to_owned(),
            admin: false,
            created_at,
            related: Vec::new(),
        })
    }

    pub fn tx_remove_principal(tx: &Transaction<'_>, kind: PrincipalKind, name: &str) -> Result<()> {
        let id = principal_id(tx, kind, name)?;
        let admin: bool = tx.query_row("SELECT admin FROM principals WHERE id = ?1", [id], |r| r.get(0))?;
        if admin {
            return Err(StoreError::Refused(
                "the local administrator cannot be removed".into(),
            ));
        }
        tx.execute("DELETE FROM principals WHERE id = ?1", [id])?;
        Ok(())
    }

    pub fn tx_add_member(tx: &Transaction<'_>, group: &str, user: &str) -> Result<()> {
        let group_id = principal_id(tx, PrincipalKind::Group, group)?;
        let user_id = principal_id(tx, PrincipalKind::User, user)?;
        tx.execute(
            "INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?1, ?2)",
            params![group_id, user_id],
        )?;
        Ok(())
    }

    pub fn tx_remove_member(tx: &Transaction<'_>, group: &str, user: &str) -> Result<()> {
        let group_id = principal_id(tx, PrincipalKind::Group, group)?;
        let user_id = principal_id(tx, PrincipalKind::User, user)?;
        let removed = tx.execute(
            "DELETE FROM memberships WHERE group_id = ?1 AND user_id = ?2",
            params![group_id, user_id],
        )?;
        if removed == 0 {
            return Err(StoreError::PrincipalNotFound(format!(
                "`{user}` in group `{group}`"
            )));
        }
        Ok(())
    }

    /// A principal with its related names (a user's groups, a group's members).
    pub fn principal(&self, kind: PrincipalKind, name: &str) -> Result<Principal> {
        self.principals(kind)?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| StoreError::PrincipalNotFound(format!("{} `{name}`", kind.as_str())))
    }

    pub fn principals(&self, kind: PrincipalKind) -> Result<Vec<Principal>> {
        let conn = self.conn();
        let related_sql = match kind {
            PrincipalKind::User => {
                "SELECT g.name FROM memberships m JOIN principals g ON g.id = m.group_id
                 WHERE m.user_id = ?1 ORDER BY g.name"
            }
            PrincipalKind::Group => {
                "SELECT u.name FROM memberships m JOIN principals u ON u.id = m.user_id
                 WHERE m.group_id = ?1 ORDER BY u.name"
            }
        };
        let mut stmt =
            conn.prepare("SELECT id, name, admin, created_at FROM principals WHERE kind = ?1 ORDER BY name")?;
        let mut related = conn.prepare(related_sql)?;
        let rows = stmt.query_map([kind.as_str()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, admin, created_at) = row?;
            let names = related
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            out.push(Principal {
                id,
                kind,
                name,
                admin,
                created_at,
                related: names,
            });
        }
        Ok(out)
    }

    // --- tokens ---------------------------------------------------------------------------

    pub fn tx_add_token(
        tx: &Transaction<'_>,
        user: &str,
        id: &str,
        name: Option<&str>,
        secret_sha256: &str,
        expires_at: Option<UnixMillis>,
    ) -> Result<TokenRecord> {
        let user_id = principal_id(tx, PrincipalKind::User, user)?;
        let created_at = groundwork_core::now_millis();
        tx.execute(
            "INSERT INTO tokens (id, user_id, name, secret_sha256, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, user_id, name, secret_sha256, created_at, expires_at],
        )?;
        Ok(TokenRecord {
            id: id.to_owned(),
            user: user.to_owned(),
            name: name.map(str::to_owned),
            secret_sha256: secret_sha256.to_owned(),
            created_at,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        })
    }

    pub fn tx_revoke_token(tx: &Transaction<'_>, id: &str) -> Result<()> {
        let now = groundwork_core::now_millis();
        let changed = tx.execute(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
            params![id, now],
        )?;
        if changed == 0 {
            return Err(StoreError::PrincipalNotFound(format!("token `{id}`")));
        }
        Ok(())
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        Ok(self.tokens_where("t.id = ?1", params![id])?.into_iter().next())
    }

    pub fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>> {
        match user {
            Some(user) => self.tokens_where("u.name = ?1", params![user]),
            None => self.tokens_where("1 = 1", params![]),
        }
    }

    fn tokens_where(&self, clause: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<TokenRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT t.id, u.name, t.name, t.secret_sha256, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
             FROM tokens t JOIN principals u ON u.id = t.user_id WHERE {clause} ORDER BY t.created_at"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok(TokenRecord {
                id: r.get(0)?,
                user: r.get(1)?,
                name: r.get(2)?,
                secret_sha256: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
                revoked_at: r.get(6)?,
                last_used_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn touch_token(&self, id: &str, now: UnixMillis) -> Result<()> {
        self.conn().execute(
            "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    // --- grants ---------------------------------------------------------------------------

    pub fn tx_add_grant(tx: &Transaction<'_>, grant: &NewGrant) -> Result<Grant> {
        let (kind, name) = match &grant.grantee {
            Grantee::User(name) => (PrincipalKind::User, name),
            Grantee::Group(name) => (PrincipalKind::Group, name),
        };
        let principal = principal_id(tx, kind, name)?;
        let masks =
            (!grant.masks.is_empty()).then(|| serde_json::to_string(&grant.masks).expect("maps serialise"));
        tx.execute(
            "INSERT INTO grants (principal_id, location, level, expires_at, created_at, row_filter, masks)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                principal,
                grant.location,
                grant.level.as_str(),
                grant.expires_at,
                groundwork_core::now_millis(),
                grant.row_filter,
                masks,
            ],
        )?;
        Ok(Grant {
            id: tx.last_insert_rowid(),
            grantee: grant.grantee.clone(),
            location: grant.location.clone(),
            level: grant.level,
            expires_at: grant.expires_at,
            revoked_at: None,
            row_filter: grant.row_filter.clone(),
            masks: grant.masks.clone(),
        })
    }

    pub fn tx_revoke_grant(tx: &Transaction<'_>, id: i64) -> Result<()> {
        let changed = tx.execute(
            "UPDATE grants SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
            params![id, groundwork_core::now_millis()],
        )?;
        if changed == 0 {
            return Err(StoreError::PrincipalNotFound(format!("grant {id}")));
        }
        Ok(())
    }

    /// Every grant, revoked and expired ones included (the decision filters by time).
    pub fn grants(&self) -> Result<Vec<Grant>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT g.id, p.kind, p.name, g.location, g.level, g.expires_at, g.revoked_at, g.row_filter, g.masks
             FROM grants g JOIN principals p ON p.id = g.principal_id ORDER BY g.id",
        )?;
        let rows = stmt.query_map([], |r| {
            let kind: String = r.get(1)?;
            let name: String = r.get(2)?;
            let level: String = r.get(4)?;
            Ok(Grant {
                id: r.get(0)?,
                grantee: if kind == "group" {
                    Grantee::Group(name)
                } else {
                    Grantee::User(name)
                },
                location: r.get(3)?,
                level: Level::parse(&level).unwrap_or(Level::Read),
                expires_at: r.get(5)?,
                revoked_at: r.get(6)?,
                row_filter: r.get(7)?,
                // Unreadable masks hide every column they could name: a grant whose masks
                // cannot be read must not show anything in the clear.
                masks: match r.get::<_, Option<String>>(8)? {
                    None => Default::default(),
                    Some(text) => serde_json::from_str(&text).unwrap_or_else(|_| {
                        std::collections::BTreeMap::from([("*".to_owned(), "hide".to_owned())])
                    }),
                },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Where a chunk came from: the document version it was cut from and everything that shaped it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkLineage {
    pub chunk_id: i64,
    pub knowledge_base: String,
    pub document_id: i64,
    pub document_uri: String,
    pub object_version: Option<String>,
    pub content_sha256: Option<String>,
    pub format: Option<String>,
    pub encoding: Option<String>,
    pub parser: Option<String>,
    pub chunker: Option<String>,
    pub embedder: Option<String>,
    pub ordinal: i64,
    pub char_start: i64,
    pub char_end: i64,
    pub text_sha256: String,
    pub document_updated_at: UnixMillis,
}

impl Store {
    /// The lineage of a chunk that still exists (re-chunking issues new ids, so an id from an
    /// old audit record may be gone; its record still pins the document version).
    pub fn chunk_lineage(&self, chunk_id: i64) -> Result<Option<ChunkLineage>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT c.id, k.name, d.id, d.uri, d.object_version, d.content_sha256, d.format, d.encoding,
                        d.parser, d.chunker, d.embedder, c.ordinal, c.char_start, c.char_end, c.text_sha256,
                        d.updated_at
                 FROM chunks c JOIN documents d ON d.id = c.document_id
                 JOIN knowledge_bases k ON k.id = d.kb_id WHERE c.id = ?1",
                [chunk_id],
                |r| {
                    Ok(ChunkLineage {
                        chunk_id: r.get(0)?,
                        knowledge_base: r.get(1)?,
                        document_id: r.get(2)?,
                        document_uri: r.get(3)?,
                        object_version: r.get(4)?,
                        content_sha256: r.get(5)?,
                        format: r.get(6)?,
                        encoding: r.get(7)?,
                        parser: r.get(8)?,
                        chunker: r.get(9)?,
                        embedder: r.get(10)?,
                        ordinal: r.get(11)?,
                        char_start: r.get(12)?,
                        char_end: r.get(13)?,
                        text_sha256: r.get(14)?,
                        document_updated_at: r.get(15)?,
                    })
                },
            )
            .optional()?)
    }
}
