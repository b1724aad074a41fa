//! The service error: every engine error, classified into a stable [`ErrorCode`].

use groundwork_core::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{message}")]
    Coded { code: ErrorCode, message: String },
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ServiceError {
        ServiceError::Coded {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::Coded { code, .. } => *code,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ServiceError {
        ServiceError::new(ErrorCode::InvalidRequest, message)
    }
}

/// The code of a store error (also used for audit records of failed changes).
pub(crate) fn store_error_code(e: &groundwork_store::StoreError) -> ErrorCode {
    use groundwork_store::StoreError as E;
    match e {
        E::KbNotFound(_) | E::PrincipalNotFound(_) => ErrorCode::NotFound,
        E::KbExists(_) | E::SourceExists(_) | E::PrincipalExists(_) => ErrorCode::AlreadyExists,
        E::Refused(_) => ErrorCode::InvalidRequest,
        E::Corrupt(_) | E::TooNew { .. } => ErrorCode::Corrupt,
        E::Sqlite(_) | E::AuditJournal(_) | E::Io(_) => ErrorCode::Internal,
    }
}

impl From<groundwork_store::StoreError> for ServiceError {
    fn from(e: groundwork_store::StoreError) -> Self {
        ServiceError::new(store_error_code(&e), e.to_string())
    }
}

impl From<groundwork_embed::EmbedError> for ServiceError {
    fn from(e: groundwork_embed::EmbedError) -> Self {
        ServiceError::new(ErrorCode::ModelUnavailable, e.to_string())
    }
}

impl From<groundwork_index::IndexError> for ServiceError {
    fn from(e: groundwork_index::IndexError) -> Self {
        use groundwork_index::IndexError as E;
        let code = match &e {
            E::Locked => ErrorCode::Busy,
            E::Corrupt(_) | E::SchemaMismatch(_) => ErrorCode::Corrupt,
            _ => ErrorCode::Internal,
        };
        ServiceError::new(code, format!("index: {e}"))
    }
}

impl From<groundwork_search::IndexSyncError> for ServiceError {
    fn from(e: groundwork_search::IndexSyncError) -> Self {
        use groundwork_search::IndexSyncError as E;
        match e {
            E::Store(e) => e.into(),
            E::Index(e) => e.into(),
        }
    }
}

impl From<groundwork_objects::ObjectError> for ServiceError {
    fn from(e: groundwork_objects::ObjectError) -> Self {
        use groundwork_objects::ObjectError as E;
        let code = match &e {
            E::InvalidUri(_) | E::MissingFolder(_) => ErrorCode::InvalidRequest,
            E::NotFound { .. } => ErrorCode::NotFound,
            _ => ErrorCode::SourceUnavailable,
        };
        ServiceError::new(code, e.to_string())
    }
}

impl From<groundwork_ingest::sync::SyncError> for ServiceError {
    fn from(e: groundwork_ingest::sync::SyncError) -> Self {
        use groundwork_ingest::sync::SyncError as E;
        match e {
            E::Store(e) => e.into(),
            E::Source(e) => e.into(),
            E::Embed(e) => e.into(),
            E::Index(e) => e.into(),
            E::Parser(message) => ServiceError::new(ErrorCode::Internal, message),
        }
    }
}

impl From<groundwork_core::FilterError> for ServiceError {
    fn from(e: groundwork_core::FilterError) -> Self {
        ServiceError::invalid(e.to_string())
    }
}

impl From<std::io::Error> for ServiceError {
    fn from(e: std::io::Error) -> Self {
        ServiceError::new(ErrorCode::Internal, format!("I/O: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_errors_keep_their_type_through_sync_and_search() {
        let locked = groundwork_search::IndexSyncError::Index(groundwork_index::IndexError::Locked);
        assert_eq!(ServiceError::from(locked).code(), ErrorCode::Busy);
        let through_sync =
            groundwork_ingest::sync::SyncError::Index(groundwork_search::IndexSyncError::Index(
                groundwork_index::IndexError::Corrupt("truncated".into()),
            ));
        assert_eq!(ServiceError::from(through_sync).code(), ErrorCode::Corrupt);
    }
}
