//! What SQL may run: exactly one read-only statement, bounded, naming only tables.
//!
//! Invariant: a statement reaches planning only if it is a single query (`SELECT`/`WITH`/
//! `VALUES`, `SHOW TABLES`, `SHOW COLUMNS`, `DESCRIBE`, or `EXPLAIN` of one of those) with no
//! table functions. DDL, DML, `COPY`, `SET`, `CREATE EXTERNAL TABLE`, `ATTACH`, `PRAGMA`,
//! transactions and URL tables never parse into something allowed here, and the plan is checked
//! again by DataFusion's read-only `SQLOptions` after planning (two independent gates).

use crate::error::{Result, SqlError};
use datafusion::common::TableReference;
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr as AstExpr, Statement, TableFactor, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use std::ops::ControlFlow;

/// Bounds on SQL text.
#[derive(Debug, Clone, Copy)]
pub struct TextLimits {
    pub max_bytes: usize,
    /// Nesting depth the parser accepts (subqueries, parentheses).
    pub max_depth: usize,
}

impl Default for TextLimits {
    fn default() -> Self {
        TextLimits {
            max_bytes: 64 * 1024,
            max_depth: 64,
        }
    }
}

/// A statement that passed the gate, with every table it names.
#[derive(Debug)]
pub struct Checked {
    pub statement: DFStatement,
    /// Tables as written (CTE names excluded).
    pub tables: Vec<TableReference>,
    /// `EXPLAIN …` (the plan is the result).
    pub is_explain: bool,
}

/// Parses `sql` and checks that it is exactly one allowed statement.
pub fn check(sql: &str, limits: TextLimits) -> Result<Checked> {
    if sql.len() > limits.max_bytes {
        return Err(SqlError::Invalid(format!(
            "the SQL is {} bytes; the limit is {}",
            sql.len(),
            limits.max_bytes
        )));
    }
    if sql.trim().is_empty() {
        return Err(SqlError::Invalid("empty SQL".into()));
    }
    let dialect = GenericDialect {};
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .with_recursion_limit(limits.max_depth)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| SqlError::Invalid(format!("cannot parse the SQL: {}", first_line(&e.to_string()))))?;
    if statements.len() != 1 {
        return Err(SqlError::Refused(format!(
            "exactly one statement is allowed, found {}",
            statements.len()
        )));
    }
    let statement = statements.pop_front().expect("one statement");
    let is_explain = matches!(statement, DFStatement::Explain(_));
    allowed(&statement)?;
    let tables = references(&statement)?;
    Ok(Checked {
        statement,
        tables,
        is_explain,
    })
}

fn allowed(statement: &DFStatement) -> Result<()> {
    match statement {
        DFStatement::Statement(inner) => {
            let kind = match inner.as_ref() {
                Statement::Query(_) => "query",
                Statement::ShowTables { .. } => "show tables",
                Statement::ShowColumns { .. } => "show columns",
                Statement::ExplainTable { .. } => "describe",
                other => {
                    return Err(SqlError::Refused(format!(
                        "only read-only queries may run, not `{}`",
                        statement_name(other)
                    )));
                }
            };
            if let ControlFlow::Break(reason) = inner.visit(&mut Forbidden) {
                return Err(SqlError::Refused(format!("{reason} is not allowed in a {kind}")));
            }
            Ok(())
        }
        DFStatement::Explain(explain) => allowed(&explain.statement),
        DFStatement::CreateExternalTable(_) => Err(SqlError::Refused(
            "only read-only queries may run, not CREATE EXTERNAL TABLE".into(),
        )),
        DFStatement::CopyTo(_) => Err(SqlError::Refused(
            "only read-only queries may run, not COPY".into(),
        )),
        DFStatement::Reset(_) => Err(SqlError::Refused(
            "only read-only queries may run, not RESET".into(),
        )),
    }
}

/// Rejects table functions (`FROM generate_series(…)`, `TABLE(…)`, `LATERAL f(…)`) and
/// anything in a query that could reach outside the granted tables.
struct Forbidden;

impl Visitor for Forbidden {
    type Break = String;

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table {
                name, args: Some(_), ..
            } => ControlFlow::Break(format!("the table function `{name}`")),
            TableFactor::Function { name, .. } => ControlFlow::Break(format!("the table function `{name}`")),
            TableFactor::TableFunction { .. } => ControlFlow::Break("a TABLE(…) function".into()),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_expr(&mut self, expr: &AstExpr) -> ControlFlow<String> {
        if let AstExpr::Function(function) = expr {
            let name = function.name.to_string().to_ascii_lowercase();
            let base = name.rsplit('.').next().unwrap_or(&name).trim_matches('"');
            if READS_OUTSIDE.contains(&base) {
                return ControlFlow::Break(format!("the function `{base}`"));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Function names that read files, URLs or other databases in some engine. DataFusion has none
/// of them registered; refusing them by name keeps a future engine (or extension) from
/// quietly granting them.
const READS_OUTSIDE: &[&str] = &[
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "read_json",
    "read_json_auto",
    "read_text",
    "read_blob",
    "parquet_scan",
    "parquet_metadata",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "lo_import",
    "load_extension",
    "readfile",
    "dblink",
    "url",
    "http_get",
];

fn statement_name(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_ascii_uppercase()
}

/// Every table the statement names, CTEs excluded.
fn references(statement: &DFStatement) -> Result<Vec<TableReference>> {
    let (tables, _ctes) = datafusion::sql::resolve::resolve_table_references(statement, true)
        .map_err(|e| SqlError::Invalid(first_line(&e.to_string())))?;
    Ok(tables)
}

/// The tables a statement written for SQLite (as benchmark gold SQL is) reads, lower-cased and
/// unquoted, CTE names excluded. For evaluation: it does not gate anything.
pub fn sqlite_tables_read(sql: &str) -> Result<Vec<String>> {
    use datafusion::sql::sqlparser::ast::visit_relations;
    use datafusion::sql::sqlparser::dialect::SQLiteDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let statements = Parser::parse_sql(&SQLiteDialect {}, sql)
        .map_err(|e| SqlError::Invalid(format!("cannot parse the SQL: {}", first_line(&e.to_string()))))?;
    let mut ctes = Vec::new();
    let mut tables = Vec::new();
    for statement in &statements {
        if let Statement::Query(query) = statement
            && let Some(with) = &query.with
        {
            ctes.extend(
                with.cte_tables
                    .iter()
                    .map(|c| c.alias.name.value.to_ascii_lowercase()),
            );
        }
        let _ = visit_relations(statement, |name| {
            let last = name.0.last().map(|part| part.to_string()).unwrap_or_default();
            let last = last
                .trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']')
                .to_ascii_lowercase();
            if !tables.contains(&last) {
                tables.push(last);
            }
            ControlFlow::<()>::Continue(())
        });
    }
    tables.retain(|t| !ctes.contains(t));
    Ok(tables)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_owned()
}
