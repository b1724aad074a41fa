//! The access decision: grants on location prefixes × document ACLs, deny by default.
//!
//! A [`Subject`] is the authenticated user with the groups it belongs to. Its [`AccessPolicy`]
//! holds the locations of the grants that apply *now* (its own and its groups', not revoked,
//! not expired), so an expired grant stops working at its expiry without any sync.
//!
//! A document is readable when
//! 1. some applying grant's location [covers](crate::location::covers) the document URI, and
//! 2. the document has no ACL, or its ACL names the user (`user:alice`) or one of the user's
//!    groups (`group:finance`).
//!
//! The ACL is `metadata.access.read`, a list of `user:NAME` / `group:NAME` entries taken from
//! the sidecar. It only ever narrows: it cannot give access that no grant gives. An ACL that is
//! present but malformed (not an object with a list of strings under `read`) denies everyone:
//! a typo must not open a document up. Entries in any other form are ignored. The local admin
//! that `groundwork init` creates is the one exception: it reads everything, ACLs included,
//! so that single-user use needs no set-up.

use groundwork_core::UnixMillis;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::location::covers;

/// What a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Read,
    /// Read, plus (in later milestones) upload and administration of the location.
    ReadWrite,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::ReadWrite => "readwrite",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "read" => Some(Level::Read),
            "readwrite" => Some(Level::ReadWrite),
            _ => None,
        }
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Grantee {
    User(String),
    Group(String),
}

/// A grant as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: i64,
    pub grantee: Grantee,
    /// Normalised location prefix (see [`crate::location::normalise`]).
    pub location: String,
    pub level: Level,
    pub expires_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
    /// For tables: a boolean SQL expression over a table's columns; only rows it admits are
    /// readable through this grant. Documents ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// For tables: column name → mask (`hide`, `null`, `hash`) through this grant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masks: BTreeMap<String, String>,
}

/// A grant to create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewGrant {
    pub grantee: Grantee,
    /// Normalised location prefix.
    pub location: String,
    pub level: Level,
    pub expires_at: Option<UnixMillis>,
    #[serde(default)]
    pub row_filter: Option<String>,
    #[serde(default)]
    pub masks: BTreeMap<String, String>,
}

impl NewGrant {
    /// A plain read grant: no expiry, no row filter, no masks.
    pub fn read(grantee: Grantee, location: impl Into<String>) -> NewGrant {
        NewGrant {
            grantee,
            location: location.into(),
            level: Level::Read,
            expires_at: None,
            row_filter: None,
            masks: BTreeMap::new(),
        }
    }
}

/// What one grant lets its principal see of a table it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableView {
    pub row_filter: Option<String>,
    pub masks: BTreeMap<String, String>,
}

impl Grant {
    /// Whether the grant is in force at `now`.
    pub fn active(&self, now: UnixMillis) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|until| now < until)
    }
}

/// The authenticated principal a request runs as.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    pub user: String,
    pub groups: Vec<String>,
    /// The local administrator: reads everything and may administer principals and grants.
    pub admin: bool,
}

impl Subject {
    fn is_named_by(&self, grantee: &Grantee) -> bool {
        match grantee {
            Grantee::User(name) => *name == self.user,
            Grantee::Group(name) => self.groups.iter().any(|g| g == name),
        }
    }
}

/// A subject's effective access at one instant. Two equal policies make the same decision for
/// every document, so a policy can key a cache of decisions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccessPolicy {
    subject: Subject,
    locations: Vec<String>,
    /// `(location, view)` of every applying grant, for tables.
    views: Vec<(String, TableView)>,
}

impl AccessPolicy {
    /// The policy of `subject` at `now` given all stored grants.
    pub fn new(subject: Subject, grants: &[Grant], now: UnixMillis) -> AccessPolicy {
        let mut locations: Vec<String> = grants
            .iter()
            .filter(|g| g.active(now) && subject.is_named_by(&g.grantee))
            .map(|g| g.location.clone())
            .collect();
        locations.sort();
        locations.dedup();
        let mut views: Vec<(String, TableView)> = grants
            .iter()
            .filter(|g| g.active(now) && subject.is_named_by(&g.grantee))
            .map(|g| {
                (
                    g.location.clone(),
                    TableView {
                        row_filter: g.row_filter.clone(),
                        masks: g.masks.clone(),
                    },
                )
            })
            .collect();
        views.sort();
        views.dedup();
        AccessPolicy {
            subject,
            locations,
            views,
        }
    }

    /// What the subject may see of the table at `location`: the views of every applying grant
    /// that covers it (`None`: the table is not readable at all). The administrator sees
    /// everything, unfiltered and unmasked.
    pub fn table_views(&self, location: &str) -> Option<Vec<TableView>> {
        if self.subject.admin {
            return Some(vec![TableView::default()]);
        }
        let views: Vec<TableView> = self
            .views
            .iter()
            .filter(|(prefix, _)| covers(prefix, location))
            .map(|(_, view)| view.clone())
            .collect();
        (!views.is_empty()).then_some(views)
    }

    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// True when nothing can be read at all (no applying grant), so retrieval can stop early.
    pub fn denies_everything(&self) -> bool {
        !self.subject.admin && self.locations.is_empty()
    }

    /// True when everything is readable (the admin), so retrieval needs no allow-list.
    pub fn allows_everything(&self) -> bool {
        self.subject.admin
    }

    /// The decision for one document.
    pub fn can_read(&self, uri: &str, metadata: &Map<String, Value>) -> bool {
        if self.subject.admin {
            return true;
        }
        if !self.locations.iter().any(|prefix| covers(prefix, uri)) {
            return false;
        }
        match metadata.get(ACL_KEY) {
            None => true,
            Some(acl) => acl_admits(acl, &self.subject),
        }
    }
}

/// The metadata key that holds a document's ACL.
pub const ACL_KEY: &str = "access";

fn acl_admits(acl: &Value, subject: &Subject) -> bool {
    let Some(readers) = acl.get("read").and_then(Value::as_array) else {
        return false;
    };
    readers
        .iter()
        .filter_map(Value::as_str)
        .any(|entry| match entry.split_once(':') {
            Some(("user", name)) => name == subject.user,
            Some(("group", name)) => subject.groups.iter().any(|g| g == name),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(grantee: Grantee, location: &str, expires_at: Option<i64>) -> Grant {
        Grant {
            id: 1,
            grantee,
            location: location.into(),
            level: Level::Read,
            expires_at,
            revoked_at: None,
            row_filter: None,
            masks: BTreeMap::new(),
        }
    }

    fn alice() -> Subject {
        Subject {
            user: "alice".into(),
            groups: vec!["finance".into()],
            admin: false,
        }
    }

    fn meta(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn grants_and_acls_combine() {
        let grants = [
            grant(Grantee::Group("finance".into()), "s3://b/finance", None),
            grant(Grantee::User("bob".into()), "s3://b/hr", None),
        ];
        let policy = AccessPolicy::new(alice(), &grants, 1_000);
        let none = Map::new();
        assert!(policy.can_read("s3://b/finance/q1.pdf", &none));
        assert!(
            !policy.can_read("s3://b/hr/pay.pdf", &none),
            "bob's grant is not alice's"
        );
        assert!(
            !policy.can_read("s3://b/financex/q1.pdf", &none),
            "whole segments only"
        );
        let listed = meta(json!({"access": {"read": ["user:carol", "group:finance"]}}));
        assert!(policy.can_read("s3://b/finance/q1.pdf", &listed));
        let narrowed = meta(json!({"access": {"read": ["user:carol"]}}));
        assert!(!policy.can_read("s3://b/finance/q1.pdf", &narrowed));
        // An ACL naming alice gives nothing without a grant.
        let named = meta(json!({"access": {"read": ["user:alice"]}}));
        assert!(!policy.can_read("s3://b/hr/pay.pdf", &named));
        // Malformed ACLs deny.
        for bad in [
            json!({"access": "user:alice"}),
            json!({"access": {"read": "user:alice"}}),
            json!({"access": {}}),
        ] {
            assert!(!policy.can_read("s3://b/finance/q1.pdf", &meta(bad)));
        }
    }

    #[test]
    fn expiry_and_revocation_apply_at_decision_time() {
        let mut g = grant(Grantee::User("alice".into()), "file:///docs", Some(2_000));
        assert!(
            AccessPolicy::new(alice(), std::slice::from_ref(&g), 1_999)
                .can_read("file:///docs/a", &Map::new())
        );
        assert!(
            !AccessPolicy::new(alice(), std::slice::from_ref(&g), 2_000)
                .can_read("file:///docs/a", &Map::new())
        );
        g.expires_at = None;
        g.revoked_at = Some(1_500);
        assert!(AccessPolicy::new(alice(), &[g], 1_000).denies_everything());
    }

    #[test]
    fn admin_reads_everything_and_strangers_nothing() {
        let admin = Subject {
            user: "admin".into(),
            groups: vec![],
            admin: true,
        };
        let acl = meta(json!({"access": {"read": []}}));
        assert!(AccessPolicy::new(admin, &[], 0).can_read("s3://x/y", &acl));
        let stranger = AccessPolicy::new(alice(), &[], 0);
        assert!(stranger.denies_everything());
        assert!(!stranger.can_read("s3://x/y", &Map::new()));
    }
}
