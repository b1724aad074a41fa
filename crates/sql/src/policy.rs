//! Governance by plan rewriting: what a principal may see of one table, and the table provider
//! that enforces it wherever the table appears.
//!
//! Invariant: a governed table's every scan is `Projection(masks) ← Filter(row filter) ←
//! TableScan(inner)`, planned inside the provider and sealed under [`PolicyBarrierExec`], so no
//! query shape — join, subquery, CTE, view, UNION, `information_schema` — can reach the inner
//! table around it, and no predicate of the caller's is evaluated on a row the policy hides
//! (DataFusion would otherwise push the caller's filter below the row filter, where an error
//! such as a division by zero on a hidden row would leak it). Hidden columns are absent from the
//! governed schema; masked ones carry the mask's type.
//!
//! Several grants may cover one table; what they allow is their union: a row is visible when
//! any grant's filter admits it, and a value is shown in the clear when a grant that leaves the
//! column clear admits the row, hashed when only a hashing grant does, else NULL.

use crate::error::{Result, SqlError};
use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, TableProviderFilterPushDown, TableType, Volatility, ident, lit, when,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a column is masked, from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mask {
    /// A keyed hash of the value (16 hex characters): joins and counts still work, the value
    /// cannot be read or looked up without the home's key.
    Hash,
    /// NULL.
    Null,
    /// The column is not there at all.
    Hide,
}

impl std::str::FromStr for Mask {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Mask, String> {
        match s.to_ascii_lowercase().as_str() {
            "hash" => Ok(Mask::Hash),
            "null" => Ok(Mask::Null),
            "hide" => Ok(Mask::Hide),
            other => Err(format!("`{other}` is not a mask: use hide, null or hash")),
        }
    }
}

/// What one grant lets its principal see of a table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GrantView {
    /// A boolean SQL expression over the table's columns; `None` admits every row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    /// Masked columns by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masks: BTreeMap<String, Mask>,
}

impl GrantView {
    pub fn is_unrestricted(&self) -> bool {
        self.row_filter.is_none() && self.masks.is_empty()
    }
}

/// The effective policy on one table: the views of every grant that covers it (at least one,
/// or the table would not be readable at all).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TablePolicy {
    pub views: Vec<GrantView>,
}

impl TablePolicy {
    /// Nothing filtered or masked (the administrator, or a plain grant).
    pub fn unrestricted() -> TablePolicy {
        TablePolicy {
            views: vec![GrantView::default()],
        }
    }

    pub fn is_unrestricted(&self) -> bool {
        self.views.iter().any(GrantView::is_unrestricted)
    }
}

/// What `policy` applies to a table with `columns`: the rows' filter (the views' filters joined
/// with `OR`; none when a view admits every row) and, per column, the strictest form a value may
/// come out in (no entry: always in the clear).
pub fn applied(policy: &TablePolicy, columns: &[&str]) -> Applied {
    let row_filter = if policy.views.iter().any(|v| v.row_filter.is_none()) {
        None
    } else {
        let filters: Vec<String> = policy
            .views
            .iter()
            .filter_map(|v| v.row_filter.as_ref().map(|f| format!("({f})")))
            .collect();
        Some(filters.join(" OR "))
    };
    let mut masks = BTreeMap::new();
    for column in columns {
        let always_clear = policy
            .views
            .iter()
            .any(|v| v.row_filter.is_none() && !v.masks.contains_key(*column));
        if always_clear {
            continue;
        }
        // Otherwise a value is clear where an unmasking grant admits its row, else hashed (when
        // a hashing grant admits it) or NULL: the strictest form it can take is reported.
        let mask = if policy
            .views
            .iter()
            .all(|v| v.masks.get(*column) == Some(&Mask::Hide))
        {
            Mask::Hide
        } else if policy
            .views
            .iter()
            .any(|v| v.masks.get(*column) == Some(&Mask::Hash))
        {
            Mask::Hash
        } else {
            Mask::Null
        };
        masks.insert(column.to_string(), mask);
    }
    Applied { row_filter, masks }
}

/// Checks that `sql` is one boolean expression over a table's own columns (no statement, no
/// subquery, no other table), before any table's columns are known: `grant add` calls it.
pub fn check_row_filter(sql: &str) -> Result<()> {
    if sql.len() > 4096 {
        return Err(SqlError::Invalid("a row filter is at most 4 KiB".into()));
    }
    let checked = crate::safety::check(
        &format!("SELECT * FROM t WHERE {sql}"),
        crate::safety::TextLimits::default(),
    )
    .map_err(|e| SqlError::Invalid(format!("row filter `{sql}`: {e}")))?;
    if checked.tables.len() != 1 || checked.tables[0].table() != "t" || checked.tables[0].schema().is_some() {
        return Err(SqlError::Invalid(format!(
            "row filter `{sql}`: it may not read other tables"
        )));
    }
    let text = checked.statement.to_string().to_ascii_lowercase();
    if text.matches("select").count() != 1 {
        return Err(SqlError::Invalid(format!(
            "row filter `{sql}`: it may not hold a subquery"
        )));
    }
    Ok(())
}

/// Parses a row filter against a table's columns, as `grant add --row-filter` and every query
/// do. Only column references, literals, operators and scalar functions are accepted.
pub fn parse_row_filter(sql: &str, schema: &SchemaRef) -> Result<Expr> {
    let checked = crate::safety::check(
        &format!("SELECT 1 WHERE {sql}"),
        crate::safety::TextLimits::default(),
    )
    .map_err(|e| SqlError::Invalid(format!("row filter: {e}")))?;
    if !checked.tables.is_empty() {
        return Err(SqlError::Invalid("a row filter may not read other tables".into()));
    }
    let df_schema =
        DFSchema::try_from(schema.as_ref().clone()).map_err(|e| SqlError::Internal(e.to_string()))?;
    let context = datafusion::prelude::SessionContext::new();
    let expr = context
        .parse_sql_expr(sql, &df_schema)
        .map_err(|e| SqlError::Invalid(format!("row filter `{sql}`: {}", first_line(&e.to_string()))))?;
    let mut subquery = false;
    expr.apply(|e| {
        if matches!(e, Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)) {
            subquery = true;
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| SqlError::Internal(e.to_string()))?;
    if subquery {
        return Err(SqlError::Invalid("a row filter may not hold a subquery".into()));
    }
    Ok(expr)
}

use datafusion::common::tree_node::TreeNode;

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).to_owned()
}

/// The keyed hash behind [`Mask::Hash`]: `hex(sha256(key ‖ value as text))[..16]`. The key
/// lives in the function, never in a plan, so `EXPLAIN` cannot show it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MaskHash {
    key: [u8; 32],
    signature: Signature,
}

impl MaskHash {
    pub const NAME: &'static str = "gw_mask_hash";

    pub fn udf(key: [u8; 32]) -> ScalarUDF {
        ScalarUDF::from(MaskHash {
            key,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for MaskHash {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let array = args.args[0].to_array(args.number_rows)?;
        let text = cast(&array, &DataType::Utf8)?;
        let text = text
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>()
            .ok_or_else(|| datafusion::error::DataFusionError::Internal("mask input is not text".into()))?;
        let mut out = StringBuilder::with_capacity(text.len(), text.len() * 16);
        for value in text.iter() {
            match value {
                None => out.append_null(),
                Some(value) => {
                    let mut hasher = Sha256::new();
                    hasher.update(self.key);
                    hasher.update(value.as_bytes());
                    out.append_value(&hex::encode(hasher.finalize())[..16]);
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

/// A table seen through a policy.
#[derive(Debug)]
pub struct GovernedTable {
    inner: Arc<dyn TableProvider>,
    plan: LogicalPlan,
    schema: SchemaRef,
    /// What was applied, for the audit record.
    pub applied: Applied,
}

/// The filters and masks a governed table applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Applied {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_filter: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub masks: BTreeMap<String, Mask>,
}

impl GovernedTable {
    pub fn try_new(
        inner: Arc<dyn TableProvider>,
        policy: &TablePolicy,
        hash: &ScalarUDF,
    ) -> Result<GovernedTable> {
        let schema = inner.schema();
        let truth = || lit(true);
        // Each view's filter as an expression; a filter that no longer applies to the columns
        // (they changed since the grant was made) admits nothing: fail closed.
        let filters: Vec<Expr> = policy
            .views
            .iter()
            .map(|view| match &view.row_filter {
                None => truth(),
                Some(sql) => parse_row_filter(sql, &schema).unwrap_or_else(|_| lit(false)),
            })
            .collect();
        let any_of = |select: &dyn Fn(usize) -> bool| -> Option<Expr> {
            let chosen: Vec<Expr> = (0..policy.views.len())
                .filter(|i| select(*i))
                .map(|i| filters[i].clone())
                .collect();
            if chosen.iter().any(|f| *f == truth()) {
                return Some(truth());
            }
            chosen.into_iter().reduce(Expr::or)
        };
        let row_filter = any_of(&|_| true).filter(|f| *f != truth());
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let applied = applied(policy, &names);
        let mut projection = Vec::new();
        for field in schema.fields() {
            let name = field.name();
            let mask_of = |i: usize| policy.views[i].masks.get(name).copied();
            let column = Expr::Column(Column::new_unqualified(name));
            let clear = any_of(&|i| mask_of(i).is_none());
            let hashed = any_of(&|i| mask_of(i) == Some(Mask::Hash));
            let nulled = any_of(&|i| mask_of(i) == Some(Mask::Null));
            let expr = match (clear, hashed, nulled) {
                (Some(c), _, _) if c == truth() => column,
                (None, None, None) => continue,
                (clear, hashed, _) => {
                    let output_type = if hashed.is_some() {
                        DataType::Utf8
                    } else {
                        field.data_type().clone()
                    };
                    let null =
                        lit(ScalarValue::try_from(&output_type)
                            .map_err(|e| SqlError::Internal(e.to_string()))?);
                    let hash_expr = hash.call(vec![column.clone()]);
                    let clear_expr = if output_type == *field.data_type() {
                        column.clone()
                    } else {
                        datafusion::logical_expr::cast(column.clone(), output_type.clone())
                    };
                    match (clear, hashed) {
                        (Some(c), Some(h)) => when(c, clear_expr).when(h, hash_expr).otherwise(null),
                        (Some(c), None) => when(c, clear_expr).otherwise(null),
                        (None, Some(h)) if h == truth() => Ok(hash_expr),
                        (None, Some(h)) => when(h, hash_expr).otherwise(null),
                        (None, None) => Ok(null),
                    }
                    .map_err(|e| SqlError::Internal(e.to_string()))?
                }
            };
            projection.push(expr.alias(name));
        }
        let mut builder = LogicalPlanBuilder::scan("governed", provider_as_source(inner.clone()), None)
            .map_err(|e| SqlError::Internal(e.to_string()))?;
        if let Some(filter) = row_filter {
            builder = builder
                .filter(filter)
                .map_err(|e| SqlError::Internal(e.to_string()))?;
        }
        let plan = builder
            .project(projection)
            .and_then(|b| b.build())
            .map_err(|e| SqlError::Internal(e.to_string()))?;
        let schema = Arc::clone(plan.schema().inner());
        Ok(GovernedTable {
            inner,
            plan,
            schema,
            applied,
        })
    }

    pub fn inner(&self) -> &Arc<dyn TableProvider> {
        &self.inner
    }
}

impl GovernedTable {
    /// Whether `expr` is built only from columns no mask touches, literals, comparisons,
    /// `AND`/`OR`/`NOT`, `IS [NOT] NULL`, `BETWEEN` and `IN` lists of literals — operations
    /// that cannot raise an error on any row.
    fn infallible_on_clear_columns(&self, expr: &Expr) -> bool {
        use datafusion::logical_expr::{Between, BinaryExpr, Operator};
        match expr {
            Expr::Column(column) => {
                self.schema.field_with_name(&column.name).is_ok()
                    && !self.applied.masks.contains_key(&column.name)
            }
            Expr::Literal(..) => true,
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                matches!(
                    op,
                    Operator::Eq
                        | Operator::NotEq
                        | Operator::Lt
                        | Operator::LtEq
                        | Operator::Gt
                        | Operator::GtEq
                        | Operator::And
                        | Operator::Or
                        | Operator::IsDistinctFrom
                        | Operator::IsNotDistinctFrom
                ) && self.infallible_on_clear_columns(left)
                    && self.infallible_on_clear_columns(right)
            }
            Expr::Not(inner) | Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
                self.infallible_on_clear_columns(inner)
            }
            Expr::Between(Between { expr, low, high, .. }) => {
                self.infallible_on_clear_columns(expr)
                    && matches!(**low, Expr::Literal(..))
                    && matches!(**high, Expr::Literal(..))
            }
            Expr::InList(list) => {
                self.infallible_on_clear_columns(&list.expr)
                    && list.list.iter().all(|e| matches!(e, Expr::Literal(..)))
            }
            _ => false,
        }
    }
}

#[async_trait]
impl TableProvider for GovernedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Only predicates that cannot fail and read no masked column are taken in (`Exact`: the
    /// scan applies them over the governed rows, so they are not evaluated twice). Inside,
    /// they may be evaluated on rows the row filter hides — which reveals nothing, since such
    /// a predicate can neither raise an error nor see a value a mask changes — and they let
    /// the scan skip data (Parquet row groups, PostgreSQL `WHERE`). Anything else stays above
    /// the barrier, where it only ever sees governed rows. (The barrier passes no statistics
    /// up: with them, join reordering changed which queries fail in the oracle property test.)
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.infallible_on_clear_columns(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut builder = LogicalPlanBuilder::from(self.plan.clone());
        // Checked again here: only what `supports_filters_pushdown` accepted may come in.
        let hints: Vec<Expr> = filters
            .iter()
            .filter(|f| self.infallible_on_clear_columns(f))
            .cloned()
            .collect();
        if let Some(hint) = datafusion::logical_expr::utils::conjunction(hints) {
            builder = builder.filter(hint)?;
        }
        if let Some(columns) = projection {
            builder = builder.project(columns.iter().map(|i| ident(self.schema.field(*i).name())))?;
        }
        // A limit reaches a scan only when no filter stayed above it, so taking it here is safe.
        if let Some(n) = limit {
            builder = builder.limit(0, Some(n))?;
        }
        let inner = state.create_physical_plan(&builder.build()?).await?;
        Ok(Arc::new(PolicyBarrierExec::new(inner)))
    }
}

/// A pass-through plan node that no optimizer rule moves a filter, a projection or a limit
/// across (DataFusion's defaults for an unknown node are exactly "unsupported").
#[derive(Debug)]
pub struct PolicyBarrierExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl PolicyBarrierExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> PolicyBarrierExec {
        let properties = Arc::clone(input.properties());
        PolicyBarrierExec { input, properties }
    }
}

impl DisplayAs for PolicyBarrierExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "PolicyBarrierExec")
    }
}

impl ExecutionPlan for PolicyBarrierExec {
    fn name(&self) -> &str {
        "PolicyBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(PolicyBarrierExec::new(children.swap_remove(0))))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    /// Batches pass through unchanged, in order.
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }
}
