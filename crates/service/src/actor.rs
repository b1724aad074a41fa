//! Who a handle acts for: the [`Actor`], a subject and how it authenticated.
//!
//! Invariant: every handle acts for exactly one actor, the local administrator unless it
//! authenticated otherwise; the anonymous actor can be named by no grant or ACL.

use groundwork_govern::access::Subject;
use serde::Serialize;

/// The name of the administrator `groundwork init` creates.
pub const LOCAL_ADMIN: &str = "admin";

/// The principal a handle acts for, and how it authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub subject: Subject,
    /// `local` (the CLI as admin), `local-as` (the CLI with `--as`), or `token:<id>`.
    pub auth: String,
}

impl Actor {
    /// No one: reads nothing, administers nothing. A server's handle acts as this until a
    /// request's credentials authenticate it.
    pub fn anonymous() -> Actor {
        Actor {
            subject: Subject {
                // Not a valid principal name, so no grant or ACL entry can ever name it.
                user: "(anonymous)".to_owned(),
                groups: Vec::new(),
                admin: false,
            },
            auth: "none".to_owned(),
        }
    }

    pub(crate) fn local_admin() -> Actor {
        Actor {
            subject: Subject {
                user: LOCAL_ADMIN.to_owned(),
                groups: Vec::new(),
                admin: true,
            },
            auth: "local".to_owned(),
        }
    }
}
