//! The request and response bodies, shaped like Amazon Bedrock Knowledge Bases' `Retrieve` and
//! `RetrieveAndGenerate` so that their users feel at home (camelCase, `retrievalResults`,
//! `content.text`, `location`, `citations` with `generatedResponsePart` spans).
//!
//! groundwork's own detail rides in each result's `metadata` under `x-groundwork-*` keys, as
//! Bedrock puts its own under `x-amz-bedrock-kb-*`.

use groundwork_core::{Answer, Filter, Hit, Reference};
use groundwork_guard::{Assessment, GuardrailAction, GuardrailTrace};
use groundwork_service::SearchType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Results returned when a request does not say (Bedrock's default).
pub const DEFAULT_RESULTS: usize = 5;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrieveRequest {
    pub retrieval_query: QueryText,
    #[serde(default)]
    pub retrieval_configuration: Option<RetrievalConfiguration>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryText {
    pub text: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrievalConfiguration {
    #[serde(default)]
    pub vector_search_configuration: VectorSearchConfiguration,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VectorSearchConfiguration {
    /// How many results (1–1000); 5 when absent.
    pub number_of_results: Option<usize>,
    /// `HYBRID` (the default), `SEMANTIC`, or groundwork's `LEXICAL`.
    pub override_search_type: Option<ApiSearchType>,
    /// A Bedrock `RetrievalFilter`: `{"equals": {"key": "department", "value": "hr"}}`,
    /// `andAll`, `orAll`, and the other operators.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiSearchType {
    Hybrid,
    Semantic,
    Lexical,
}

impl From<ApiSearchType> for SearchType {
    fn from(value: ApiSearchType) -> SearchType {
        match value {
            ApiSearchType::Hybrid => SearchType::Hybrid,
            ApiSearchType::Semantic => SearchType::Semantic,
            ApiSearchType::Lexical => SearchType::Lexical,
        }
    }
}

impl From<SearchType> for ApiSearchType {
    fn from(value: SearchType) -> ApiSearchType {
        match value {
            SearchType::Hybrid => ApiSearchType::Hybrid,
            SearchType::Semantic => ApiSearchType::Semantic,
            SearchType::Lexical => ApiSearchType::Lexical,
        }
    }
}

/// The options of a retrieval, checked.
pub struct RetrievalOptions {
    pub k: usize,
    pub search_type: Option<SearchType>,
    pub filter: Option<Filter>,
}

impl RetrievalConfiguration {
    pub fn options(self) -> Result<RetrievalOptions, ApiError> {
        let vector = self.vector_search_configuration;
        let filter = match vector.filter {
            None => None,
            Some(value) => {
                let filter: Filter = serde_json::from_value(value)
                    .map_err(|e| ApiError::invalid(format!("invalid filter: {e}")))?;
                filter.validate().map_err(|e| ApiError::invalid(e.to_string()))?;
                Some(filter)
            }
        };
        Ok(RetrievalOptions {
            k: vector.number_of_results.unwrap_or(DEFAULT_RESULTS),
            search_type: vector.override_search_type.map(SearchType::from),
            filter,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrieveResponse {
    pub retrieval_results: Vec<RetrievalResult>,
    pub search_type: ApiSearchType,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetrievalResult {
    pub content: ContentText,
    pub location: Location,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub score: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContentText {
    pub text: String,
}

/// Where the source object lives: `S3` with `s3Location`, or `FILE` with `fileLocation` for
/// folder sources.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_location: Option<UriLocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_location: Option<UriLocation>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UriLocation {
    pub uri: String,
}

impl Location {
    pub fn of(uri: &str) -> Location {
        let at = Some(UriLocation { uri: uri.to_owned() });
        if uri.starts_with("s3://") {
            Location {
                kind: "S3".to_owned(),
                s3_location: at,
                file_location: None,
            }
        } else {
            Location {
                kind: "FILE".to_owned(),
                s3_location: None,
                file_location: at,
            }
        }
    }
}

/// The document's metadata plus where the chunk came from, under `x-groundwork-*` keys.
fn result_metadata(
    metadata: &Map<String, Value>,
    chunk_id: i64,
    document_id: i64,
    object_version: Option<&str>,
    span: (usize, usize),
    page: Option<u32>,
    heading: Option<&str>,
) -> Map<String, Value> {
    let mut out = metadata.clone();
    out.insert("x-groundwork-chunk-id".into(), chunk_id.into());
    out.insert("x-groundwork-document-id".into(), document_id.into());
    if let Some(version) = object_version {
        out.insert("x-groundwork-object-version".into(), version.into());
    }
    out.insert("x-groundwork-char-start".into(), span.0.into());
    out.insert("x-groundwork-char-end".into(), span.1.into());
    if let Some(page) = page {
        out.insert("x-groundwork-page".into(), page.into());
    }
    if let Some(heading) = heading {
        out.insert("x-groundwork-heading".into(), heading.into());
    }
    out
}

impl From<Hit> for RetrievalResult {
    fn from(hit: Hit) -> RetrievalResult {
        let metadata = result_metadata(
            &hit.metadata,
            hit.chunk_id,
            hit.document_id,
            hit.object_version.as_deref(),
            (hit.char_start, hit.char_end),
            hit.page,
            hit.heading.as_deref(),
        );
        RetrievalResult {
            location: Location::of(&hit.uri),
            content: ContentText { text: hit.content },
            metadata,
            score: hit.score,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrieveAndGenerateRequest {
    pub input: QueryText,
    #[serde(default)]
    pub retrieval_configuration: Option<RetrievalConfiguration>,
    /// A model named under `[llms]` in the server's config, instead of the knowledge base's.
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrieveAndGenerateResponse {
    pub output: ContentText,
    pub citations: Vec<ApiCitation>,
    /// `extractive` (sentences quoted from the sources), `generated` (an LLM wrote it), or
    /// `no_answer`.
    pub mode: String,
    /// The models involved (embedder fingerprint; the LLM when one wrote the text).
    pub models: Vec<String>,
    /// `INTERVENED` when the knowledge base's guardrail blocked or rewrote something, else
    /// `NONE` (Bedrock's field); absent when no guardrail applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrail_action: Option<String>,
    /// The guardrail's trace: the assessments of the question and the answer, and the
    /// retrieved chunks it flagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub guardrail: Option<GuardrailTrace>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiCitation {
    pub generated_response_part: GeneratedResponsePart,
    pub retrieved_references: Vec<RetrievedReference>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedResponsePart {
    pub text_response_part: TextResponsePart,
}

/// A part of the output text. `span` counts Unicode scalar values of `output.text`; `end` is
/// exclusive.
#[derive(Debug, Serialize, ToSchema)]
pub struct TextResponsePart {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetrievedReference {
    pub content: ContentText,
    pub location: Location,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

impl From<&Reference> for RetrievedReference {
    fn from(reference: &Reference) -> RetrievedReference {
        RetrievedReference {
            content: ContentText {
                text: reference.excerpt.clone(),
            },
            location: Location::of(&reference.uri),
            // Document metadata is not part of a reference; the chunk's provenance is.
            metadata: result_metadata(
                &Map::new(),
                reference.chunk_id,
                reference.document_id,
                reference.object_version.as_deref(),
                (reference.char_start, reference.char_end),
                reference.page,
                reference.heading.as_deref(),
            ),
        }
    }
}

impl From<Answer> for RetrieveAndGenerateResponse {
    fn from(answer: Answer) -> RetrieveAndGenerateResponse {
        let citations = answer
            .citations
            .iter()
            .filter_map(|citation| {
                // Answer spans are byte offsets; the API speaks characters.
                let text = answer.text.get(citation.start..citation.end)?;
                let start = answer.text[..citation.start].chars().count();
                Some(ApiCitation {
                    generated_response_part: GeneratedResponsePart {
                        text_response_part: TextResponsePart {
                            text: text.to_owned(),
                            span: Span {
                                start,
                                end: start + text.chars().count(),
                            },
                        },
                    },
                    retrieved_references: citation.references.iter().map(RetrievedReference::from).collect(),
                })
            })
            .collect();
        let mode = serde_json::to_value(answer.mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        RetrieveAndGenerateResponse {
            output: ContentText { text: answer.text },
            citations,
            mode,
            models: answer.models,
            guardrail_action: answer.guardrail.as_ref().map(|trace| {
                match trace.action {
                    GuardrailAction::GuardrailIntervened => "INTERVENED",
                    GuardrailAction::None => "NONE",
                }
                .to_owned()
            }),
            guardrail: answer.guardrail,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKnowledgeBase {
    pub name: String,
    /// Chunking and embedder settings, as in `groundwork kb create`; defaults when absent.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSource {
    /// A folder path, `file://` URI, or `s3://bucket/prefix`.
    pub uri: String,
    /// Endpoint, region and credentials for S3-compatible stores.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveSource {
    pub uri: String,
}

/// A started sync job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: u64,
    /// Where to follow it.
    pub status_url: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipal {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub user: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub user: String,
    /// RFC 3339 time or a duration such as `30d`.
    pub expires: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrant {
    /// `user:NAME` or `group:NAME`.
    pub grantee: String,
    /// A location prefix: `s3://bucket/prefix/` or a folder path / `file://` URI.
    pub location: String,
    /// `read` (default) or `readwrite`.
    #[serde(default)]
    pub level: Option<String>,
    /// RFC 3339 time or a duration such as `8h`.
    pub until: Option<String>,
    /// Tables only: a SQL condition over a table's columns; only rows it admits are readable.
    #[serde(default)]
    pub row_filter: Option<String>,
    /// Tables only: column → `hide`, `null` or `hash`.
    #[serde(default)]
    pub masks: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQueryParams {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// RFC 3339 time or a duration back from now (`24h`).
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only records whose retrieved chunks came from this document URI.
    pub document: Option<String>,
    /// Most records returned (default 100, at most 10,000).
    pub limit: Option<usize>,
}

/// `POST /v1/guardrails/{name}/apply`: Bedrock's `ApplyGuardrail` request. Content items are
/// texts; a qualifier marks an item as the question (`query`) or a passage the output should be
/// grounded in (`grounding_source`); unqualified items (or `guard_content`) are the text checked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyGuardrailRequest {
    /// `INPUT` (a user's question) or `OUTPUT` (a model's answer).
    pub source: String,
    pub content: Vec<GuardrailContent>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailContent {
    pub text: GuardrailText,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailText {
    pub text: String,
    #[serde(default)]
    pub qualifiers: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyGuardrailResponse {
    /// `GUARDRAIL_INTERVENED` or `NONE`.
    pub action: String,
    pub action_reason: Option<String>,
    /// The text to use from here on (original, anonymised, or the blocked message).
    pub outputs: Vec<ContentText>,
    /// The full assessment; findings carry offsets, never the matched values.
    #[schema(value_type = Object)]
    pub assessments: Vec<Assessment>,
}

/// `POST /v1/knowledge-bases/{name}/query`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequestBody {
    /// One read-only statement: SELECT/WITH, SHOW TABLES, DESCRIBE, EXPLAIN.
    pub sql: String,
    /// Plan only: the `done` line carries the plan and no row is read.
    #[serde(default)]
    pub explain: Option<bool>,
}

/// `PUT …/tables/{table}/quality`: the ruleset (DQDL-like), or null to remove it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualityRulesBody {
    pub rules: Option<String>,
}
