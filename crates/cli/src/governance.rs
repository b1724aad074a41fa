//! `user`, `group`, `token`, `grant` and `audit` commands.

use crate::output::print_json;
use clap::{Args, Subcommand};
use groundwork_core::format_millis;
use groundwork_service::{
    AnchorLocation, AuditQuery, AuditRow, Grantee, Groundwork, Level, PrincipalKind, parse_time_or_duration,
};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add { name: String },
    /// List users with their groups.
    List,
    /// Remove a user with its memberships, grants and tokens.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add { name: String },
    /// List groups with their members.
    List,
    /// Remove a group with its memberships and grants.
    Remove { name: String },
    /// Add a user to a group.
    AddMember { group: String, user: String },
    /// Take a user out of a group.
    RemoveMember { group: String, user: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; the secret is shown once.
    Create {
        #[arg(long)]
        user: String,
        /// A label to recognise the token by.
        #[arg(long)]
        name: Option<String>,
        /// Expiry: an RFC 3339 time or a duration such as 30d.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct GranteeArgs {
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    group: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Grant a user or group access to a location prefix (folder or s3://bucket/prefix).
    Add {
        #[command(flatten)]
        grantee: GranteeArgs,
        /// Read access to this location.
        #[arg(long, conflicts_with = "readwrite", required_unless_present = "readwrite")]
        read: Option<String>,
        /// Read and write access to this location.
        #[arg(long)]
        readwrite: Option<String>,
        /// Expiry: an RFC 3339 time (2027-01-31T00:00:00Z) or a duration (8h, 30d).
        #[arg(long)]
        until: Option<String>,
    },
    /// List grants, with their state now.
    List,
    /// Revoke a grant by its id.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; name the first altered, removed or reordered record.
    Verify {
        /// Also check an anchor written by `audit anchor` (catches a removed tail): a file or
        /// an `s3://bucket/key` object.
        #[arg(long)]
        anchor: Option<String>,
        /// S3-compatible endpoint of an `s3://` anchor.
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Write the chain head, signed when a key is configured, to a file or to an
    /// `s3://bucket/key` object that someone holding the database cannot rewrite.
    Anchor {
        location: String,
        /// S3-compatible endpoint of an `s3://` location.
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Find records by actor, action, time range or document.
    Query {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Export records as JSON lines (for a SIEM).
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum LineageCommand {
    /// Where a chunk came from: document, object version, hash, parser, chunker, embedder.
    Chunk { id: i64 },
    /// An audited search or answer back to every chunk, object version and model it used.
    Answer { seq: i64 },
    /// Every audited search or answer that used a document (by URI).
    Document { uri: String },
}

#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    #[arg(long)]
    actor: Option<String>,
    #[arg(long)]
    action: Option<String>,
    /// Records at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Records before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Records whose retrieved chunks came from this document URI.
    #[arg(long)]
    document: Option<String>,
    /// Records after this sequence number.
    #[arg(long)]
    after: Option<i64>,
    #[arg(long)]
    limit: Option<usize>,
}

impl AuditFilterArgs {
    fn query(&self) -> anyhow::Result<AuditQuery> {
        let now = groundwork_core::now_millis();
        let time = |t: &Option<String>| t.as_deref().map(|t| parse_time_or_duration(t, now)).transpose();
        Ok(AuditQuery {
            actor: self.actor.clone(),
            action: self.action.clone(),
            since: time(&self.since)?,
            until: time(&self.until)?,
            document_uri: self.document.clone(),
            after_seq: self.after,
            limit: self.limit,
        })
    }
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), format_millis)
}

pub fn principal_command(
    groundwork: &Groundwork,
    kind: PrincipalKind,
    add: Option<&str>,
    remove: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    if let Some(name) = add {
        let principal = groundwork.add_principal(kind, name)?;
        if json {
            print_json(&principal)?;
        } else {
            println!("added {} `{}`", kind.as_str(), principal.name);
        }
    } else if let Some(name) = remove {
        groundwork.remove_principal(kind, name)?;
        if json {
            print_json(&serde_json::json!({ "removed": name }))?;
        } else {
            println!("removed {} `{name}`", kind.as_str());
        }
    } else {
        let principals = groundwork.list_principals(kind)?;
        if json {
            print_json(&principals)?;
        } else {
            for p in principals {
                let related = if p.related.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", p.related.join(", "))
                };
                let admin = if p.admin { "  (administrator)" } else { "" };
                println!("{}{admin}{related}", p.name);
            }
        }
    }
    Ok(())
}

pub fn user_command(groundwork: &Groundwork, command: UserCommand, json: bool) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name } => {
            principal_command(groundwork, PrincipalKind::User, Some(&name), None, json)
        }
        UserCommand::Remove { name } => {
            principal_command(groundwork, PrincipalKind::User, None, Some(&name), json)
        }
        UserCommand::List => principal_command(groundwork, PrincipalKind::User, None, None, json),
    }
}

pub fn group_command(groundwork: &Groundwork, command: GroupCommand, json: bool) -> anyhow::Result<()> {
    match command {
        GroupCommand::Add { name } => {
            principal_command(groundwork, PrincipalKind::Group, Some(&name), None, json)
        }
        GroupCommand::Remove { name } => {
            principal_command(groundwork, PrincipalKind::Group, None, Some(&name), json)
        }
        GroupCommand::List => principal_command(groundwork, PrincipalKind::Group, None, None, json),
        GroupCommand::AddMember { group, user } => {
            groundwork.add_member(&group, &user)?;
            if json {
                print_json(&serde_json::json!({ "group": group, "added": user }))?;
            } else {
                println!("added `{user}` to `{group}`");
            }
            Ok(())
        }
        GroupCommand::RemoveMember { group, user } => {
            groundwork.remove_member(&group, &user)?;
            if json {
                print_json(&serde_json::json!({ "group": group, "removed": user }))?;
            } else {
                println!("removed `{user}` from `{group}`");
            }
            Ok(())
        }
    }
}

pub fn token_command(groundwork: &Groundwork, command: TokenCommand, json: bool) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { user, name, expires } => {
            let now = groundwork_core::now_millis();
            let expires_at = expires
                .as_deref()
                .map(|e| parse_time_or_duration(e, now))
                .transpose()?;
            let created = groundwork.create_token(&user, name.as_deref(), expires_at)?;
            if json {
                print_json(&created)?;
            } else {
                println!("{}", created.token);
                eprintln!(
                    "token {} for `{user}`, expires {}; the secret above is shown only once",
                    created.record.id,
                    when(created.record.expires_at)
                );
            }
        }
        TokenCommand::List { user } => {
            let tokens = groundwork.list_tokens(user.as_deref())?;
            if json {
                print_json(&tokens)?;
            } else {
                for t in tokens {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{}  {}  {state}  expires {}  last used {}",
                        t.id,
                        t.user,
                        when(t.expires_at),
                        when(t.last_used_at)
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            groundwork.revoke_token(&id)?;
            if json {
                print_json(&serde_json::json!({ "revoked": id }))?;
            } else {
                println!("revoked token {id}");
            }
        }
    }
    Ok(())
}

pub fn grant_command(groundwork: &Groundwork, command: GrantCommand, json: bool) -> anyhow::Result<()> {
    match command {
        GrantCommand::Add {
            grantee,
            read,
            readwrite,
            until,
        } => {
            let grantee = match (grantee.user, grantee.group) {
                (Some(user), _) => Grantee::User(user),
                (None, Some(group)) => Grantee::Group(group),
                (None, None) => anyhow::bail!("name a --user or a --group"),
            };
            let (level, location) = match (read, readwrite) {
                (Some(location), _) => (Level::Read, location),
                (None, Some(location)) => (Level::ReadWrite, location),
                (None, None) => anyhow::bail!("give --read LOCATION or --readwrite LOCATION"),
            };
            let now = groundwork_core::now_millis();
            let until = until
                .as_deref()
                .map(|u| parse_time_or_duration(u, now))
                .transpose()?;
            let grant = groundwork.add_grant(grantee, &location, level, until)?;
            if json {
                print_json(&grant)?;
            } else {
                println!(
                    "grant {}: {} on {} until {}",
                    grant.id,
                    grant.level.as_str(),
                    grant.location,
                    when(grant.expires_at)
                );
            }
        }
        GrantCommand::List => {
            let grants = groundwork.list_grants()?;
            let now = groundwork_core::now_millis();
            if json {
                let rows: Vec<_> = grants
                    .iter()
                    .map(|g| {
                        let mut v = serde_json::to_value(g).expect("grants serialise");
                        v["active"] = g.active(now).into();
                        v
                    })
                    .collect();
                print_json(&rows)?;
            } else {
                for g in grants {
                    let who = match &g.grantee {
                        Grantee::User(n) => format!("user:{n}"),
                        Grantee::Group(n) => format!("group:{n}"),
                    };
                    let state = if g.revoked_at.is_some() {
                        "revoked"
                    } else if g.active(now) {
                        "active"
                    } else {
                        "expired"
                    };
                    println!(
                        "{}  {who}  {}  {}  until {}  {state}",
                        g.id,
                        g.level.as_str(),
                        g.location,
                        when(g.expires_at)
                    );
                }
            }
        }
        GrantCommand::Revoke { id } => {
            groundwork.revoke_grant(id)?;
            if json {
                print_json(&serde_json::json!({ "revoked": id }))?;
            } else {
                println!("revoked grant {id}");
            }
        }
    }
    Ok(())
}

fn print_record(row: &AuditRow) {
    println!(
        "{:>6}  {}  {}({})  {}  {}  {}{}  {} chunks",
        row.seq,
        format_millis(row.at),
        row.actor,
        row.auth,
        row.action,
        row.target.as_deref().unwrap_or("-"),
        row.outcome,
        row.code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default(),
        row.chunk_refs().len()
    );
}

pub fn audit_command(groundwork: &Groundwork, command: AuditCommand, json: bool) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { anchor, endpoint } => {
            let anchor = anchor
                .map(|anchor| AnchorLocation::parse(&anchor, endpoint))
                .transpose()?;
            let report = groundwork.audit_verify(anchor.as_ref())?;
            if json {
                print_json(&report)?;
            } else if let Some(problem) = &report.problem {
                println!(
                    "audit log BROKEN after {} records: {problem}",
                    report.verification.records
                );
            } else {
                println!("audit log intact: {} records", report.verification.records);
            }
            if !report.intact {
                // The report above is the answer; the exit code tells scripts it failed.
                std::process::exit(groundwork_core::ErrorCode::Corrupt.exit_code());
            }
        }
        AuditCommand::Anchor { location, endpoint } => {
            let location = AnchorLocation::parse(&location, endpoint)?;
            let anchor = groundwork.audit_anchor(&location)?;
            if json {
                print_json(&anchor)?;
            } else {
                let signed = if anchor.signature.is_some() {
                    ", signed"
                } else {
                    ""
                };
                println!("anchored record {} to {location}{signed}", anchor.seq);
            }
        }
        AuditCommand::Query { filter } => {
            let rows = groundwork.audit_query(&filter.query()?)?;
            if json {
                print_json(&rows)?;
            } else {
                rows.iter().for_each(print_record);
            }
        }
        AuditCommand::Export { format, filter } => {
            anyhow::ensure!(format == "jsonl", "the only export format is jsonl");
            for row in groundwork.audit_query(&filter.query()?)? {
                println!("{}", serde_json::to_string(&row)?);
            }
        }
    }
    Ok(())
}

pub fn lineage_command(groundwork: &Groundwork, command: LineageCommand, json: bool) -> anyhow::Result<()> {
    match command {
        LineageCommand::Chunk { id } => {
            let lineage = groundwork.chunk_lineage(id)?;
            if json {
                print_json(&lineage)?;
            } else {
                println!(
                    "chunk {} (#{} of document {}, chars {}..{}) in `{}`",
                    lineage.chunk_id,
                    lineage.ordinal,
                    lineage.document_id,
                    lineage.char_start,
                    lineage.char_end,
                    lineage.knowledge_base
                );
                println!(
                    "  source   {} @ {}",
                    lineage.document_uri,
                    lineage.object_version.as_deref().unwrap_or("-")
                );
                println!(
                    "  content  sha256 {}",
                    lineage.content_sha256.as_deref().unwrap_or("-")
                );
                println!(
                    "  parsed   {} ({}, {})",
                    lineage.parser.as_deref().unwrap_or("-"),
                    lineage.format.as_deref().unwrap_or("-"),
                    lineage.encoding.as_deref().unwrap_or("-")
                );
                println!("  chunked  {}", lineage.chunker.as_deref().unwrap_or("-"));
                println!("  embedded {}", lineage.embedder.as_deref().unwrap_or("-"));
            }
        }
        LineageCommand::Answer { seq } => {
            let lineage = groundwork.answer_lineage(seq)?;
            if json {
                print_json(&lineage)?;
            } else {
                print_record(&lineage.record);
                println!("  models: {}", lineage.models.join(", "));
                for chunk in &lineage.chunks {
                    let state = match (&chunk.current, chunk.unchanged_since) {
                        (Some(_), true) => "unchanged since",
                        (Some(_), false) => "document changed since",
                        (None, _) => "chunk no longer exists",
                    };
                    println!(
                        "  chunk {}  {} @ {}  ({state})",
                        chunk.used.chunk_id,
                        chunk.used.document_uri,
                        chunk.used.object_version.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        LineageCommand::Document { uri } => {
            let rows = groundwork.audit_query(&AuditQuery {
                document_uri: Some(uri),
                ..AuditQuery::default()
            })?;
            if json {
                print_json(&rows)?;
            } else {
                rows.iter().for_each(print_record);
            }
        }
    }
    Ok(())
}
