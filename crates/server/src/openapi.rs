//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the
//! request/response types' `ToSchema` derives, so it cannot drift from the code.

use crate::api::*;
use crate::error::ErrorBody;
use crate::jobs::{JobState, JobStatus};
use crate::routes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "groundwork", description = "Knowledge bases with permission-aware hybrid search, cited answers and a tamper-evident audit log."),
    paths(
        routes::healthz, routes::readyz, routes::metrics,
        routes::list_kbs, routes::create_kb, routes::kb_status, routes::delete_kb,
        routes::list_sources, routes::add_source, routes::remove_source,
        routes::start_sync, routes::job,
        routes::retrieve, routes::retrieve_and_generate, routes::retrieve_and_generate_stream,
        routes::list_guardrails, routes::apply_guardrail,
        routes::audit_query, routes::audit_verify,
        routes::list_users, routes::add_user, routes::remove_user,
        routes::list_groups, routes::add_group, routes::remove_group,
        routes::add_member, routes::remove_member,
        routes::list_tokens, routes::create_token, routes::revoke_token,
        routes::list_grants, routes::add_grant, routes::revoke_grant,
    ),
    components(schemas(
        ErrorBody, RetrieveRequest, RetrieveResponse, RetrieveAndGenerateRequest,
        RetrieveAndGenerateResponse, JobStatus, JobState, JobAccepted,
        ApplyGuardrailRequest, ApplyGuardrailResponse,
    )),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// Declares the `bearer` scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A groundwork API token (gw_…) or an OIDC JWT"))
                    .build(),
            ),
        );
    }
}

/// The document as JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serialises")
}
