//! The requests every part of the DynamoDB store makes, each metered: one item by
//! key, a key range of one partition, a transaction (creating a session), a
//! conditional single-item write (whose failed condition is a typed `Precondition`, never an error), a
//! batch of deletes; and how an SDK failure maps to the protocol's codes.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConsumedCapacity, DeleteRequest, Put,
    ReturnConsumedCapacity, TransactWriteItem, WriteRequest,
};

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

use super::DynamoStore;
use super::items::{Item, key, s};
use super::keys;
use crate::error::{Error, Result};
use crate::session::SessionId;
use crate::store::{RACE_ATTEMPTS, backoff};

/// BatchWriteItem takes at most 25 requests.
pub const BATCH: usize = 25;

/// Whether a conditional write's condition held (and the write was made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    Held,
    /// Nothing was written.
    Failed,
}

/// How a transaction ended.
pub enum Transaction {
    Done,
    /// Cancelled; one reason per write, in order.
    Cancelled(Vec<CancellationReason>),
}

pub fn failed_condition(reason: &CancellationReason) -> bool {
    reason.code() == Some("ConditionalCheckFailed")
}

/// A put of a transaction, under an optional condition and the values it names.
pub fn put(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem> {
    let values = values
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect::<std::collections::HashMap<_, _>>();
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .set_expression_attribute_values((!values.is_empty()).then_some(values))
        .build()
        .map_err(|e| Error::unexpected(format!("building a write: {e}")))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The outputs of single-item writes, which all report consumed capacity.
pub trait WriteOutput {
    fn consumed(&self) -> Option<&ConsumedCapacity>;
}

/// The errors of single-item writes, which all have a "condition failed" case.
pub trait WriteError: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static {
    fn condition_failed(&self) -> bool;
}

macro_rules! single_item_write {
    ($($output:ty => $error:ty),* $(,)?) => {$(
        impl WriteOutput for $output {
            fn consumed(&self) -> Option<&ConsumedCapacity> {
                self.consumed_capacity()
            }
        }
        impl WriteError for $error {
            fn condition_failed(&self) -> bool {
                self.is_conditional_check_failed_exception()
            }
        }
    )*};
}

single_item_write!(
    aws_sdk_dynamodb::operation::put_item::PutItemOutput =>
        aws_sdk_dynamodb::operation::put_item::PutItemError,
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput =>
        aws_sdk_dynamodb::operation::update_item::UpdateItemError,
    aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput =>
        aws_sdk_dynamodb::operation::delete_item::DeleteItemError,
);

/// How many items a Query brings back: at most `items`, and none after the one
/// that brings what `measure` counts past `bytes` (the page it came in was read
/// all the same: a read overshoots its byte budget by at most one DynamoDB page,
/// 1 MB).
#[derive(Debug, Clone, Copy)]
pub(super) struct Take {
    pub items: Option<usize>,
    pub bytes: Option<(usize, Measure)>,
}

/// The bytes of an item that count against a read's budget.
pub(super) type Measure = fn(&Item) -> usize;

impl From<Option<usize>> for Take {
    fn from(items: Option<usize>) -> Take {
        Take { items, bytes: None }
    }
}

impl DynamoStore {
    /// The outcome of a conditional single-item write, metered, with the output
    /// when its condition held.
    pub(super) fn conditional<O: WriteOutput, E: WriteError, R: std::fmt::Debug>(
        &self,
        out: std::result::Result<O, SdkError<E, R>>,
        operation: &str,
    ) -> Result<Option<O>> {
        match out {
            Ok(out) => {
                self.meter.write(out.consumed());
                Ok(Some(out))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.condition_failed()) => {
                // A refused write is a request too; DynamoDB reports no units for it.
                self.meter.write(&[]);
                Ok(None)
            }
            Err(e) => Err(store_error(operation, e)),
        }
    }

    /// Whether a conditional single-item write's condition held, metered.
    pub(super) fn precondition<O: WriteOutput, E: WriteError, R: std::fmt::Debug>(
        &self,
        out: std::result::Result<O, SdkError<E, R>>,
        operation: &str,
    ) -> Result<Precondition> {
        Ok(match self.conditional(out, operation)? {
            Some(_) => Precondition::Held,
            None => Precondition::Failed,
        })
    }

    pub(super) async fn transact(
        &self,
        writes: Vec<TransactWriteItem>,
        token: Option<String>,
        operation: &str,
    ) -> Result<Transaction> {
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .set_client_request_token(token)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.meter.write(out.consumed_capacity());
                Ok(Transaction::Done)
            }
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    self.meter.write(&[]);
                    Ok(Transaction::Cancelled(c.cancellation_reasons().to_vec()))
                }
                _ => Err(store_error(operation, err)),
            },
        }
    }

    /// An update of a session's head (`META`), asking for its consumed capacity
    /// (the caller meters it with the outcome).
    pub(super) fn update_meta(&self, id: &SessionId) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::session_pk(id)))
            .key("sk", s(keys::META))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }

    /// One item by its key, strongly consistent, metered.
    pub(super) async fn get_item(
        &self,
        pk: String,
        sk: &str,
        operation: &str,
    ) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error(operation, e))?;
        self.meter.read(out.consumed_capacity());
        Ok(out.item)
    }

    /// A Query of one partition's items with sort keys in `lo..=hi`.
    fn key_range(&self, pk: &str, lo: &str, hi: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
    }

    /// Up to `limit` sort keys of one partition in `lo..=hi`, in either order, and
    /// whether more are left: one Query page reading keys only (DynamoDB still
    /// charges for whole items read, but nothing else is carried back).
    pub(super) async fn sort_keys(
        &self,
        pk: &str,
        lo: &str,
        hi: &str,
        limit: usize,
        ascending: bool,
    ) -> Result<(Vec<String>, bool)> {
        let out = self
            .key_range(pk, lo, hi)
            .projection_expression("sk")
            .scan_index_forward(ascending)
            .consistent_read(true)
            .limit(limit.min(1000) as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("reading keys", e))?;
        self.meter.read(out.consumed_capacity());
        let keys = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|i| super::items::sk(i).map(str::to_owned))
            .collect();
        Ok((keys, out.last_evaluated_key.is_some()))
    }

    /// The items of one partition whose sort keys lie in `lo..=hi`, in order, all
    /// pages or the first `limit` items. Strongly consistent: readers must see what
    /// a write acknowledged a moment ago.
    pub(super) async fn query_range(
        &self,
        pk: &str,
        lo: &str,
        hi: &str,
        take: impl Into<Take>,
        operation: &str,
    ) -> Result<Vec<Item>> {
        self.query(pk, lo, hi, take, true, true, operation).await
    }

    /// One partition's items with sort keys in `lo..=hi`, in either order, as many
    /// as `take` says, metered. `consistent: false` halves the cost where a
    /// moment's lag does not matter.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn query(
        &self,
        pk: &str,
        lo: &str,
        hi: &str,
        take: impl Into<Take>,
        ascending: bool,
        consistent: bool,
        operation: &str,
    ) -> Result<Vec<Item>> {
        let Take {
            items: limit,
            bytes: max_bytes,
        } = take.into();
        if limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut items: Vec<Item> = Vec::new();
        let mut bytes = 0;
        let mut start = None;
        loop {
            let page_limit = limit.map(|l| (l - items.len()).min(1000) as i32);
            let out = self
                .key_range(pk, lo, hi)
                .scan_index_forward(ascending)
                .consistent_read(consistent)
                .set_limit(page_limit)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error(operation, e))?;
            self.meter.read(out.consumed_capacity());
            for item in out.items.unwrap_or_default() {
                if let Some((max, measure)) = max_bytes {
                    if bytes > max {
                        return Ok(items);
                    }
                    bytes += measure(&item);
                }
                items.push(item);
            }
            start = out.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| items.len() >= l) {
                return Ok(items);
            }
        }
    }

    /// Deletes items of one partition by sort key, in batches, retrying what
    /// DynamoDB leaves unprocessed.
    pub(super) async fn delete_all(
        &self,
        pk: &str,
        sort_keys: &[String],
        operation: &str,
    ) -> Result<()> {
        for chunk in sort_keys.chunks(BATCH) {
            self.delete_batch(pk, chunk, operation).await?;
        }
        Ok(())
    }

    async fn delete_batch(&self, pk: &str, sort_keys: &[String], operation: &str) -> Result<()> {
        let mut requests: Vec<WriteRequest> = sort_keys
            .iter()
            .map(|k| {
                DeleteRequest::builder()
                    .set_key(Some(key(pk, k.as_str())))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
                    .map_err(|e| Error::unexpected(format!("building a delete: {e}")))
            })
            .collect::<Result<_>>()?;
        for attempt in 0..RACE_ATTEMPTS {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| store_error(operation, e))?;
            self.meter.write(out.consumed_capacity());
            requests = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(Error::unavailable(format!(
            "{operation}: the store kept deferring deletes"
        )))
    }
}

/// Maps an SDK failure to the protocol: the store being unreachable, slow or
/// throttling past the SDK's retries is 5600; anything else is unexpected (5001).
/// The detail names the operation, never an item's contents.
pub fn store_error<E, R>(operation: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    crate::metrics::record(crate::metrics::Metric::StoreFaults, 1);
    const UNAVAILABLE: &[&str] = &[
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    ];
    let code = err.code().map(str::to_owned);
    tracing::error!(operation, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "store call failed");
    match (&err, code.as_deref()) {
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
            Error::unavailable(format!("{operation}: the store did not answer"))
        }
        (_, Some(code)) if UNAVAILABLE.contains(&code) => {
            Error::unavailable(format!("{operation}: the store is busy ({code})"))
        }
        (_, Some(code)) => Error::unexpected(format!("{operation}: the store answered {code}")),
        _ => Error::unexpected(format!("{operation}: the store call failed")),
    }
}
