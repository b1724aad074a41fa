//! Users, groups, memberships, tokens and grants (administrators only).

use crate::AppState;
use crate::api::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiResult, Body, Caller, Shared};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use groundwork_core::now_millis;
use groundwork_service::{
    CreatedToken, Grant, Grantee, Groundwork, Level, Principal, PrincipalKind, TokenRecord,
    parse_time_or_duration,
};
use std::sync::Arc;

#[utoipa::path(get, path = "/v1/users", tag = "admin", security(("bearer" = [])), responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn list_users(State(state): Shared, Caller(caller): Caller) -> ApiResult<Vec<Principal>> {
    Ok(axum::Json(
        state
            .run(move || caller.list_principals(PrincipalKind::User))
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/groups", tag = "admin", security(("bearer" = [])), responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn list_groups(State(state): Shared, Caller(caller): Caller) -> ApiResult<Vec<Principal>> {
    Ok(axum::Json(
        state
            .run(move || caller.list_principals(PrincipalKind::Group))
            .await?,
    ))
}

async fn add_principal(
    state: Arc<AppState>,
    caller: Groundwork,
    kind: PrincipalKind,
    name: String,
) -> Result<Response, ApiError> {
    let principal = state.run(move || caller.add_principal(kind, &name)).await?;
    Ok((StatusCode::CREATED, axum::Json(principal)).into_response())
}

#[utoipa::path(post, path = "/v1/users", tag = "admin", security(("bearer" = [])), request_body = CreatePrincipal,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_user(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreatePrincipal>,
) -> Result<Response, ApiError> {
    add_principal(state, caller, PrincipalKind::User, body.name).await
}

#[utoipa::path(post, path = "/v1/groups", tag = "admin", security(("bearer" = [])), request_body = CreatePrincipal,
    responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_group(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreatePrincipal>,
) -> Result<Response, ApiError> {
    add_principal(state, caller, PrincipalKind::Group, body.name).await
}

#[utoipa::path(delete, path = "/v1/users/{name}", tag = "admin", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_user(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .run(move || caller.remove_principal(PrincipalKind::User, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/groups/{name}", tag = "admin", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_group(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .run(move || caller.remove_principal(PrincipalKind::Group, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/groups/{name}/members", tag = "admin", security(("bearer" = [])), params(("name" = String, Path)),
    request_body = AddMember, responses((status = 204, description = "Added"), (status = 404, body = ErrorBody)))]
pub async fn add_member(
    State(state): Shared,
    Caller(caller): Caller,
    Path(group): Path<String>,
    Body(body): Body<AddMember>,
) -> Result<StatusCode, ApiError> {
    state.run(move || caller.add_member(&group, &body.user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/groups/{name}/members/{user}", tag = "admin", security(("bearer" = [])),
    params(("name" = String, Path), ("user" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): Shared,
    Caller(caller): Caller,
    Path((group, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.run(move || caller.remove_member(&group, &user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/tokens", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "Token records (never secrets)", body = Object), (status = 403, body = ErrorBody)))]
pub async fn list_tokens(State(state): Shared, Caller(caller): Caller) -> ApiResult<Vec<TokenRecord>> {
    Ok(axum::Json(state.run(move || caller.list_tokens(None)).await?))
}

#[utoipa::path(post, path = "/v1/tokens", tag = "admin", security(("bearer" = [])), request_body = CreateToken,
    responses((status = 201, description = "The token; its secret is shown this once", body = Object), (status = 403, body = ErrorBody)))]
pub async fn create_token(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreateToken>,
) -> Result<Response, ApiError> {
    let expires = body
        .expires
        .as_deref()
        .map(|t| parse_time_or_duration(t, now_millis()))
        .transpose()?;
    let created: CreatedToken = state
        .run(move || caller.create_token(&body.user, None, expires))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): Shared,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.run(move || caller.revoke_token(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/grants", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
pub async fn list_grants(State(state): Shared, Caller(caller): Caller) -> ApiResult<Vec<Grant>> {
    Ok(axum::Json(state.run(move || caller.list_grants()).await?))
}

#[utoipa::path(post, path = "/v1/grants", tag = "admin", security(("bearer" = [])), request_body = CreateGrant,
    responses((status = 201, body = Object), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn add_grant(
    State(state): Shared,
    Caller(caller): Caller,
    Body(body): Body<CreateGrant>,
) -> Result<Response, ApiError> {
    let grantee = match body.grantee.split_once(':') {
        Some(("user", name)) => Grantee::User(name.to_owned()),
        Some(("group", name)) => Grantee::Group(name.to_owned()),
        _ => return Err(ApiError::invalid("grantee is `user:NAME` or `group:NAME`")),
    };
    let level = match body.level.as_deref().unwrap_or("read") {
        "read" => Level::Read,
        "readwrite" => Level::ReadWrite,
        other => {
            return Err(ApiError::invalid(format!(
                "level is `read` or `readwrite`, not `{other}`"
            )));
        }
    };
    let until = body
        .until
        .as_deref()
        .map(|t| parse_time_or_duration(t, now_millis()))
        .transpose()?;
    let grant = state
        .run(move || {
            caller.add_grant(&groundwork_service::NewGrant {
                grantee,
                location: body.location,
                level,
                expires_at: until,
                row_filter: body.row_filter,
                masks: body.masks,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(grant)).into_response())
}

#[utoipa::path(delete, path = "/v1/grants/{id}", tag = "admin", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke_grant(
    State(state): Shared,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid("a grant id is a number"))?;
    state.run(move || caller.revoke_grant(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
