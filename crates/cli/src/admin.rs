//! Identities and access: `user`, `group`, `token` and `grant`.
//!
//! Grammar, then dispatch (one call into the service per command) with its printing.

use crate::output::{print_json, when};
use clap::{Args, Subcommand};
use groundwork_service::{Grantee, Groundwork, Level, NewGrant, PrincipalKind, parse_time_or_duration};

// ---- grammar ------------------------------------------------------------------------------

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
        /// Tables only: the rows readable through this grant, as a SQL condition over the
        /// table's columns, e.g. "region = 'eu'".
        #[arg(long)]
        row_filter: Option<String>,
        /// Tables only: mask a column through this grant, as COLUMN=hide|null|hash (repeat).
        #[arg(long = "mask", value_name = "COLUMN=MASK")]
        masks: Vec<String>,
    },
    /// List grants, with their state now.
    List,
    /// Revoke a grant by its id.
    Revoke { id: i64 },
}

// ---- dispatch -----------------------------------------------------------------------------

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
            row_filter,
            masks,
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
            let mut masked = std::collections::BTreeMap::new();
            for mask in masks {
                let Some((column, kind)) = mask.split_once('=') else {
                    anyhow::bail!(groundwork_service::ServiceError::invalid(format!(
                        "--mask {mask}: write COLUMN=hide, COLUMN=null or COLUMN=hash"
                    )));
                };
                masked.insert(column.trim().to_owned(), kind.trim().to_ascii_lowercase());
            }
            let grant = groundwork.add_grant(&NewGrant {
                grantee,
                location,
                level,
                expires_at: until,
                row_filter,
                masks: masked,
            })?;
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
