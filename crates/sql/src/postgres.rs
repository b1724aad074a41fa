//! PostgreSQL tables, queried in PostgreSQL.
//!
//! Invariant: every statement runs inside `BEGIN READ ONLY` with a `statement_timeout`, on a
//! connection whose password came from the environment variable the configuration names (never
//! from storage, never logged); the SQL sent is unparsed from a DataFusion plan (identifiers
//! quoted by the unparser), never spliced from a query's text.
//!
//! Pushdown, two ways:
//! - **whole query**: when every table a plan reads is an unrestricted table of one database,
//!   the optimised plan is unparsed to PostgreSQL SQL and runs there (joins, aggregates, sorts
//!   and limits included);
//! - **per table** otherwise (a join with a Parquet folder, a governed table): each scan sends
//!   its projection, the filters PostgreSQL can evaluate, and its limit.

use crate::catalog::{Column, TableDef, TableSource, identifier};
use crate::error::{Result, SqlError};
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, RecordBatch, RecordBatchOptions,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::DefaultTableSource;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::PostgreSqlDialect;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Where passwords come from: connection URLs (`postgres://user@host:port/db`, no password)
/// mapped to the environment variable holding each one's password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Connections {
    pub password_env: BTreeMap<String, String>,
    /// Server-side limit on each statement, in milliseconds.
    pub statement_timeout_ms: u64,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            password_env: BTreeMap::new(),
            statement_timeout_ms: 30_000,
        }
    }
}

/// A PostgreSQL source location, parsed: `postgres://user@host:port/db?schema=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgLocation {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub schema: String,
}

impl PgLocation {
    pub fn parse(text: &str) -> Result<PgLocation> {
        let invalid = |why: &str| {
            SqlError::Invalid(format!(
                "`{}` is not a PostgreSQL location ({why}); use postgres://user@host:port/db?schema=public",
                redact(text)
            ))
        };
        let url = url::Url::parse(text).map_err(|_| invalid("not a URL"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(invalid("scheme"));
        }
        if url.password().is_some() {
            return Err(SqlError::Invalid(
                "a PostgreSQL location must not hold a password: name the variable that holds it under \
                 [sql.postgres.password_env] in config.toml"
                    .into(),
            ));
        }
        let user = url.username();
        if user.is_empty() {
            return Err(invalid("no user"));
        }
        let host = url.host_str().ok_or_else(|| invalid("no host"))?.to_owned();
        let database = url.path().trim_start_matches('/').to_owned();
        if database.is_empty() || database.contains('/') {
            return Err(invalid("no database"));
        }
        let schema = url
            .query_pairs()
            .find(|(k, _)| k == "schema")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| "public".to_owned());
        Ok(PgLocation {
            user: user.to_owned(),
            host,
            port: url.port().unwrap_or(5432),
            database,
            schema,
        })
    }

    /// `postgres://user@host:port/db`, the key passwords are configured under.
    pub fn connection_url(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// The source URI as stored: the connection URL with its schema.
    pub fn uri(&self) -> String {
        format!("{}?schema={}", self.connection_url(), self.schema)
    }

    /// A table's location for grants: `postgres://host:port/db/schema/table` (no user).
    pub fn table_location(&self, table: &str) -> String {
        format!(
            "postgres://{}:{}/{}/{}/{table}",
            self.host, self.port, self.database, self.schema
        )
    }
}

/// Hides a password someone typed into a URL anyway.
fn redact(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => text.to_owned(),
    }
}

impl Connections {
    async fn connect(&self, location: &PgLocation) -> Result<tokio_postgres::Client> {
        let url = location.connection_url();
        let mut config = tokio_postgres::Config::new();
        config
            .user(&location.user)
            .host(&location.host)
            .port(location.port)
            .dbname(&location.database)
            .application_name("groundwork")
            .connect_timeout(Duration::from_secs(10))
            .options(format!(
                "-c default_transaction_read_only=on -c statement_timeout={}",
                self.statement_timeout_ms
            ));
        if let Some(variable) = self.password_env.get(&url) {
            let password = std::env::var(variable).map_err(|_| {
                SqlError::Unavailable(format!("the password for {url} is not in ${variable}"))
            })?;
            config.password(password);
        }
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| SqlError::Unavailable(format!("cannot connect to {url}: {}", pg_message(&e))))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A connection inside `BEGIN READ ONLY` with the statement timeout set; the transaction
    /// is never committed (dropping the connection ends it).
    async fn read_only(&self, location: &PgLocation) -> Result<tokio_postgres::Client> {
        let client = self.connect(location).await?;
        client
            .batch_execute(&format!(
                "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
                self.statement_timeout_ms
            ))
            .await
            .map_err(|e| SqlError::Unavailable(format!("PostgreSQL: {}", pg_message(&e))))?;
        Ok(client)
    }
}

fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Every table and view of the location's schema, with comments and a fingerprint of each
/// (definition, and the counters PostgreSQL keeps of inserts, updates and deletes).
pub async fn discover(
    connections: &Connections,
    location: &PgLocation,
    namespace: &str,
) -> Result<Vec<TableDef>> {
    let client = connections.connect(location).await?;
    let failed = |e: tokio_postgres::Error| SqlError::Unavailable(format!("PostgreSQL: {}", pg_message(&e)));
    let tables = client
        .query(
            "SELECT c.relname, CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END, \
                    obj_description(c.oid, 'pg_class'), \
                    COALESCE(s.n_tup_ins, 0) + COALESCE(s.n_tup_upd, 0) * 7 + COALESCE(s.n_tup_del, 0) * 13, \
                    c.relfilenode::bigint \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY c.relname",
            &[&location.schema],
        )
        .await
        .map_err(failed)?;
    let namespace = identifier(namespace);
    let mut out = Vec::new();
    for row in tables {
        let name: String = row.get(0);
        let kind: String = row.get(1);
        let comment: Option<String> = row.get(2);
        let changes: i64 = row.get(3);
        let file: i64 = row.get(4);
        let columns: Vec<Column> = client
            .query(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                        col_description(a.attrelid, a.attnum) \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&location.schema, &name],
            )
            .await
            .map_err(failed)?
            .into_iter()
            .map(|r| {
                let pg_type: String = r.get(1);
                Column {
                    name: r.get(0),
                    data_type: arrow_type(&pg_type).to_string(),
                    nullable: r.get(2),
                    comment: r.get(3),
                }
            })
            .collect();
        let schema_hash = TableDef::columns_hash(&columns);
        out.push(TableDef {
            name: format!("{namespace}.{}", identifier(&name)),
            location: location.table_location(&name),
            source: TableSource::Postgres {
                url: location.connection_url(),
                schema: location.schema.clone(),
                table: name.clone(),
            },
            columns,
            kind,
            comment,
            version: format!("{schema_hash}-{file}-{changes}"),
            source_version: format!("{schema_hash}-{file}-{changes}"),
            schema_hash,
        });
    }
    Ok(out)
}

/// The Arrow type a PostgreSQL type is read as (values travel as text and are parsed).
fn arrow_type(pg: &str) -> DataType {
    let t = pg.to_ascii_lowercase();
    if t == "smallint" || t == "integer" || t == "bigint" {
        DataType::Int64
    } else if t == "real" || t == "double precision" || t.starts_with("numeric") {
        DataType::Float64
    } else if t == "boolean" {
        DataType::Boolean
    } else if t == "date" {
        DataType::Date32
    } else if t.starts_with("timestamp") {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    } else {
        DataType::Utf8
    }
}

/// A table of a PostgreSQL database.
#[derive(Debug)]
pub struct PgTable {
    location: PgLocation,
    table: String,
    schema: SchemaRef,
    connections: Connections,
}

impl PgTable {
    pub fn new(def: &TableDef, connections: &Connections) -> Result<PgTable> {
        let TableSource::Postgres { url, schema, table } = &def.source else {
            return Err(SqlError::Internal(format!(
                "{} is not a PostgreSQL table",
                def.name
            )));
        };
        let location = PgLocation::parse(&format!("{url}?schema={schema}"))?;
        let fields: Vec<Field> = def
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.data_type.parse().unwrap_or(DataType::Utf8), true))
            .collect();
        Ok(PgTable {
            location,
            table: table.clone(),
            schema: Arc::new(Schema::new(fields)),
            connections: connections.clone(),
        })
    }

    /// Which database the table lives in (tables of one can be queried together there).
    pub fn database(&self) -> String {
        self.location.connection_url()
    }

    fn remote(&self) -> TableReference {
        TableReference::partial(self.location.schema.clone(), self.table.clone())
    }
}

#[async_trait]
impl TableProvider for PgTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let unparser = Unparser::new(&PostgreSqlDialect {});
        Ok(filters
            .iter()
            .map(|f| {
                if unparser.expr_to_sql(f).is_ok() && !has_subquery(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projected = Arc::new(match projection {
            Some(p) => self.schema.project(p)?,
            None => self.schema.as_ref().clone(),
        });
        let source = Arc::new(
            datafusion::logical_expr::logical_plan::builder::LogicalTableSource::new(Arc::clone(
                &self.schema,
            )),
        );
        // No column wanted (`count(*)`): ask for rows, not values.
        let counting = projected.fields().is_empty();
        let wanted = if counting { None } else { projection.cloned() };
        let plan = LogicalPlanBuilder::scan_with_filters(self.remote(), source, wanted, filters.to_vec())?
            .limit(0, limit)?
            .build()?;
        let mut sql = Unparser::new(&PostgreSqlDialect {})
            .plan_to_sql(&plan)?
            .to_string();
        if counting {
            sql = format!("SELECT 1 FROM ({sql}) AS q");
        }
        Ok(remote_exec(
            self.connections.clone(),
            self.location.clone(),
            sql,
            projected,
        ))
    }
}

fn has_subquery(expr: &Expr) -> bool {
    let mut found = false;
    let _ = expr.apply(|e| {
        found |= matches!(e, Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_));
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    found
}

/// A plan node that runs `sql` in PostgreSQL and yields its rows as `schema`.
fn remote_exec(
    connections: Connections,
    location: PgLocation,
    sql: String,
    schema: SchemaRef,
) -> Arc<dyn ExecutionPlan> {
    let partition = Arc::new(RemotePartition {
        connections,
        location,
        sql,
        schema: Arc::clone(&schema),
    });
    Arc::new(
        datafusion::physical_plan::streaming::StreamingTableExec::try_new(
            schema,
            vec![partition],
            None,
            vec![],
            false,
            None,
        )
        .expect("a streaming plan over one partition"),
    )
}

#[derive(Debug)]
struct RemotePartition {
    connections: Connections,
    location: PgLocation,
    sql: String,
    schema: SchemaRef,
}

impl datafusion::physical_plan::streaming::PartitionStream for RemotePartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(
        &self,
        _context: Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::execution::SendableRecordBatchStream {
        let mut builder = RecordBatchReceiverStreamBuilder::new(Arc::clone(&self.schema), 2);
        let sender = builder.tx();
        let (connections, location, sql, schema) = (
            self.connections.clone(),
            self.location.clone(),
            self.sql.clone(),
            Arc::clone(&self.schema),
        );
        builder.spawn(async move {
            let external = |e: SqlError| DataFusionError::External(Box::new(e));
            let failed = |e: tokio_postgres::Error| {
                DataFusionError::External(Box::new(SqlError::Unavailable(format!(
                    "PostgreSQL: {}",
                    pg_message(&e)
                ))))
            };
            let client = connections.read_only(&location).await.map_err(external)?;
            // The simple-query protocol returns every value as text, PostgreSQL's canonical
            // output, whatever the column types; `to_batch` parses it.
            let stream = client.simple_query_raw(&sql).await.map_err(failed)?;
            futures::pin_mut!(stream);
            let mut rows: Vec<Vec<Option<String>>> = Vec::new();
            while let Some(message) = stream.next().await {
                if let tokio_postgres::SimpleQueryMessage::Row(row) = message.map_err(failed)? {
                    rows.push((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect());
                    if rows.len() >= 8192 {
                        let batch = to_batch(&schema, std::mem::take(&mut rows))?;
                        if sender.send(Ok(batch)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            if !rows.is_empty() {
                let batch = to_batch(&schema, rows)?;
                let _ = sender.send(Ok(batch)).await;
            }
            Ok(())
        });
        builder.build()
    }
}

/// Text values (PostgreSQL's canonical output) parsed into the schema's types.
fn to_batch(schema: &SchemaRef, rows: Vec<Vec<Option<String>>>) -> DfResult<RecordBatch> {
    let count = rows.len();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let values = rows.iter().map(|r| r.get(i).cloned().flatten());
        let bad = |v: &str| {
            DataFusionError::Execution(format!(
                "PostgreSQL value `{v}` of `{}` is not a {}",
                field.name(),
                field.data_type()
            ))
        };
        let array: ArrayRef = match field.data_type() {
            DataType::Int64 => {
                let mut b = Int64Builder::with_capacity(count);
                for v in values {
                    b.append_option(v.map(|v| v.parse::<i64>().map_err(|_| bad(&v))).transpose()?);
                }
                Arc::new(b.finish())
            }
            DataType::Float64 => {
                let mut b = Float64Builder::with_capacity(count);
                for v in values {
                    b.append_option(v.map(|v| v.parse::<f64>().map_err(|_| bad(&v))).transpose()?);
                }
                Arc::new(b.finish())
            }
            DataType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(count);
                for v in values {
                    b.append_option(v.map(|v| v == "t" || v == "true"));
                }
                Arc::new(b.finish())
            }
            DataType::Date32 => {
                let mut b = Date32Builder::with_capacity(count);
                let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
                for v in values {
                    b.append_option(
                        v.map(|v| {
                            chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                                .map(|d| (d - epoch).num_days() as i32)
                                .map_err(|_| bad(&v))
                        })
                        .transpose()?,
                    );
                }
                Arc::new(b.finish())
            }
            DataType::Timestamp(TimeUnit::Microsecond, None) => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(count);
                for v in values {
                    b.append_option(
                        v.map(|v| {
                            chrono::DateTime::parse_from_str(&format!("{v}00"), "%Y-%m-%d %H:%M:%S%.f%z")
                                .map(|t| t.timestamp_micros())
                                .or_else(|_| {
                                    chrono::NaiveDateTime::parse_from_str(&v, "%Y-%m-%d %H:%M:%S%.f")
                                        .map(|t| t.and_utc().timestamp_micros())
                                })
                                .map_err(|_| bad(&v))
                        })
                        .transpose()?,
                    );
                }
                Arc::new(b.finish())
            }
            // Anything else (text of every kind, other integer and float widths, decimals):
            // Arrow's cast parses the text, and a value that does not fit is an error.
            other => {
                let mut b = StringBuilder::with_capacity(count, count * 8);
                for v in values {
                    b.append_option(v);
                }
                let text: ArrayRef = Arc::new(b.finish());
                if *other == DataType::Utf8 {
                    text
                } else {
                    datafusion::arrow::compute::cast(&text, other)?
                }
            }
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(count)),
    )?)
}

/// When every table `plan` scans is an unrestricted table of one database, the plan as
/// PostgreSQL SQL, with each registered name replaced by the remote one.
pub fn whole_query(plan: &LogicalPlan) -> Option<(PgLocation, Connections, String)> {
    let mut database: Option<(PgLocation, Connections)> = None;
    let mut all_postgres = true;
    let rewritten = plan
        .clone()
        .transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(mut scan) = node else {
                return Ok(Transformed::no(node));
            };
            let provider = scan
                .source
                .as_ref()
                .downcast_ref::<DefaultTableSource>()
                .map(|s| Arc::clone(&s.table_provider));
            match provider
                .as_ref()
                .and_then(|p| p.as_ref().downcast_ref::<PgTable>())
            {
                Some(table) => {
                    match &database {
                        None => database = Some((table.location.clone(), table.connections.clone())),
                        Some((location, _))
                            if location.connection_url() == table.location.connection_url() => {}
                        Some(_) => all_postgres = false,
                    }
                    scan.table_name = table.remote();
                    Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                }
                None => {
                    all_postgres = false;
                    Ok(Transformed::no(LogicalPlan::TableScan(scan)))
                }
            }
        })
        .ok()?
        .data;
    if !all_postgres {
        return None;
    }
    let (location, connections) = database?;
    let sql = Unparser::new(&PostgreSqlDialect {})
        .plan_to_sql(&rewritten)
        .ok()?
        .to_string();
    Some((location, connections, sql))
}

/// Runs a whole query in PostgreSQL, as a plan node yielding `schema`.
pub fn pushed_down(
    location: PgLocation,
    connections: Connections,
    sql: String,
    schema: SchemaRef,
) -> Arc<dyn ExecutionPlan> {
    remote_exec(connections, location, sql, schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_never_hold_passwords() {
        let location = PgLocation::parse("postgres://reader@db.internal:6543/shop?schema=sales").unwrap();
        assert_eq!(
            location.connection_url(),
            "postgres://reader@db.internal:6543/shop"
        );
        assert_eq!(
            location.table_location("orders"),
            "postgres://db.internal:6543/shop/sales/orders"
        );
        let refused = PgLocation::parse("postgres://reader:hunter2@db/shop")
            .unwrap_err()
            .to_string();
        assert!(!refused.contains("hunter2"), "{refused}");
        assert!(PgLocation::parse("mysql://a@b/c").is_err());
        assert!(PgLocation::parse("postgres://db/shop").is_err());
        assert_eq!(arrow_type("numeric(12,2)"), DataType::Float64);
        assert_eq!(arrow_type("character varying(20)"), DataType::Utf8);
    }
}
