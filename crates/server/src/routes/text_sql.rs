//! Questions over tables in Bedrock's shapes: `generate-query` (GenerateQuery: a question in,
//! `queries[{type, sql}]` out), and `retrieve` / `retrieve-and-generate` on a tables knowledge
//! base as Bedrock's structured knowledge bases answer them (results whose `content.type` is
//! `ROW`, with `content.row[{columnName, columnValue, type}]` and an `SQL` location).
//!
//! The service decides everything (discovery among readable tables, the model, the checks, the
//! run as the caller); this file only translates shapes.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiResult, Body, Caller, Shared};
use axum::extract::{Path, State};
use groundwork_service::{Stage, TableAnswer, TableQuestion};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// The dialect generated queries are written in, as GenerateQuery's `type` names it.
pub const QUERY_TYPE: &str = "DATAFUSION_SQL";

/// Bedrock GenerateQuery's request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateQueryRequest {
    pub query_generation_input: QueryGenerationInput,
    pub transformation_configuration: TransformationConfiguration,
    /// A model the server names under `[llms]` (groundwork's addition).
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryGenerationInput {
    pub text: String,
    /// `TEXT` (the only type).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransformationConfiguration {
    /// `TEXT_TO_SQL` (the only mode).
    pub mode: String,
    /// Bedrock names the knowledge base here; the path names it in groundwork, so this is
    /// accepted and ignored.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub text_to_sql_configuration: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GenerateQueryResponse {
    pub queries: Vec<GeneratedQuery>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratedQuery {
    /// The dialect: `DATAFUSION_SQL`.
    #[serde(rename = "type")]
    pub kind: String,
    pub sql: String,
}

#[utoipa::path(post, path = "/v1/knowledge-bases/{name}/generate-query", tag = "tables", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = GenerateQueryRequest,
    responses((status = 200, body = GenerateQueryResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "no_query: no model, or no query passed the checks", body = ErrorBody)))]
pub async fn generate_query(
    State(state): Shared,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Body(body): Body<GenerateQueryRequest>,
) -> ApiResult<GenerateQueryResponse> {
    if body.transformation_configuration.mode != "TEXT_TO_SQL" {
        return Err(ApiError::invalid(format!(
            "transformationConfiguration.mode must be TEXT_TO_SQL, not `{}`",
            body.transformation_configuration.mode
        )));
    }
    if let Some(kind) = body.query_generation_input.kind.as_deref()
        && kind != "TEXT"
    {
        return Err(ApiError::invalid(format!(
            "queryGenerationInput.type must be TEXT, not `{kind}`"
        )));
    }
    let question = TableQuestion {
        knowledge_base: name,
        question: body.query_generation_input.text,
        model: body.model,
        stage: Stage::Generate,
    };
    let answer = state.run(move || caller.ask_tables(&question, None)).await?;
    Ok(axum::Json(GenerateQueryResponse {
        queries: answer
            .sql
            .into_iter()
            .map(|sql| GeneratedQuery {
                kind: QUERY_TYPE.to_owned(),
                sql,
            })
            .collect(),
    }))
}

/// `retrieve` on a tables knowledge base: the rows of the generated query, one result each.
pub fn structured_results(answer: &TableAnswer) -> Value {
    let location = sql_location(answer);
    let results: Vec<Value> = answer
        .rows
        .iter()
        .map(|row| {
            json!({
                "content": { "type": "ROW", "row": row_columns(answer, row) },
                "location": location,
                "metadata": metadata(answer),
            })
        })
        .collect();
    json!({ "retrievalResults": results })
}

/// `retrieve-and-generate` on a tables knowledge base: the answer, cited to the rows it was
/// written from (at most 20) and the query.
pub fn structured_answer(answer: &TableAnswer) -> Value {
    let location = sql_location(answer);
    let references: Vec<Value> = answer
        .rows
        .iter()
        .take(20)
        .map(|row| {
            json!({
                "content": { "type": "ROW", "row": row_columns(answer, row) },
                "location": location,
                "metadata": metadata(answer),
            })
        })
        .collect();
    let citations = if answer.sql.is_some() && !answer.text.is_empty() {
        json!([{
            "generatedResponsePart": { "textResponsePart": {
                "text": answer.text,
                "span": { "start": 0, "end": answer.text.chars().count() },
            }},
            "retrievedReferences": references,
        }])
    } else {
        json!([])
    };
    json!({
        "output": { "text": answer.text },
        "citations": citations,
        "mode": answer.mode,
        "models": answer.models,
        "sql": answer.sql,
        "tables": answer.tables,
    })
}

fn sql_location(answer: &TableAnswer) -> Value {
    json!({ "type": "SQL", "sqlLocation": { "query": answer.sql } })
}

fn metadata(answer: &TableAnswer) -> Value {
    let tables: Vec<Value> = answer
        .tables
        .iter()
        .map(|t| json!({ "name": t.name, "version": t.version }))
        .collect();
    json!({ "x-groundwork-tables": tables })
}

/// A row as Bedrock's `content.row`: each column with its value as text and a type out of
/// `BLOB`, `BOOLEAN`, `DOUBLE`, `LONG`, `NULL`, `STRING`.
fn row_columns(answer: &TableAnswer, row: &Map<String, Value>) -> Vec<Value> {
    answer
        .columns
        .iter()
        .map(|(name, data_type)| {
            let value = row.get(name).unwrap_or(&Value::Null);
            let kind = match value {
                Value::Null => "NULL",
                _ if data_type.starts_with("Int") || data_type.starts_with("UInt") => "LONG",
                _ if data_type.starts_with("Float") || data_type.starts_with("Decimal") => "DOUBLE",
                _ if data_type == "Boolean" => "BOOLEAN",
                _ if data_type.contains("Binary") => "BLOB",
                _ => "STRING",
            };
            let text = match value {
                Value::Null => Value::Null,
                Value::String(s) => Value::String(s.clone()),
                other => Value::String(other.to_string()),
            };
            json!({ "columnName": name, "columnValue": text, "type": kind })
        })
        .collect()
}
