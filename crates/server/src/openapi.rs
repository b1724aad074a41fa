//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the
//! request/response types' `ToSchema` derives, so it cannot drift from the code.

use crate::api::*;
use crate::error::ErrorBody;
use crate::jobs::{JobState, JobStatus};
use crate::routes::text_sql::{GenerateQueryRequest, GenerateQueryResponse};
use crate::routes::{admin, audit, guardrails, kb, probes, retrieval, tables, text_sql};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "groundwork", description = "Knowledge bases with permission-aware hybrid search, cited answers and a tamper-evident audit log."),
    paths(
        probes::healthz, probes::readyz, probes::metrics,
        kb::list_kbs, kb::create_kb, kb::kb_status, kb::delete_kb,
        kb::list_sources, kb::add_source, kb::remove_source,
        kb::start_sync, kb::job,
        retrieval::retrieve, retrieval::retrieve_and_generate, retrieval::retrieve_and_generate_stream,
        tables::list_tables, tables::describe_table, tables::query,
        tables::quality_status, tables::set_quality_rules, tables::run_quality,
        text_sql::generate_query,
        guardrails::list_guardrails, guardrails::apply_guardrail,
        audit::audit_query, audit::audit_verify,
        admin::list_users, admin::add_user, admin::remove_user,
        admin::list_groups, admin::add_group, admin::remove_group,
        admin::add_member, admin::remove_member,
        admin::list_tokens, admin::create_token, admin::revoke_token,
        admin::list_grants, admin::add_grant, admin::revoke_grant,
    ),
    components(schemas(
        ErrorBody, RetrieveRequest, RetrieveResponse, RetrieveAndGenerateRequest,
        RetrieveAndGenerateResponse, JobStatus, JobState, JobAccepted,
        ApplyGuardrailRequest, ApplyGuardrailResponse, QueryRequestBody, QualityRulesBody,
        GenerateQueryRequest, GenerateQueryResponse,
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

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
