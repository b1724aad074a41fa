//! Governance engines: who may read what, and the audit trail that proves what happened.
//!
//! Everything here is pure logic over plain data, so it is unit-tested without a store:
//!
//! - [`location`]: one URI form for folders and buckets, and prefix matching on whole path
//!   segments (`/docs/hr` covers `/docs/hr/a.txt`, never `/docs/hrx/`).
//! - [`access`]: the access decision — grants on location prefixes × document ACLs from
//!   sidecar metadata, deny by default.
//! - [`jwt`]: OIDC/JWT bearer tokens (RS256, ES256) against a JWKS.
//! - [`token`]: API tokens (256-bit secrets, stored only as a hash, compared in constant time).
//! - [`mask`]: the sensitive-data detector that masks audit records before they are written
//!   (and that the guardrails will grow).
//! - [`audit`]: the canonical encoding and hash chain of audit records, and chain verification.
//!
//! The store persists principals, grants, tokens and audit rows; the service façade calls these
//! engines on every operation.

pub mod access;
pub mod audit;
pub mod jwt;
pub mod location;
pub mod mask;
pub mod token;
