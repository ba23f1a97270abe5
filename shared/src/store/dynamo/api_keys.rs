//! API keys (`KEY#<sha256>`): one item per key, outside every session's partition.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};

use super::DynamoStore;
use super::items::{api_key_from_item, api_key_item, s};
use super::keys;
use super::requests::{Precondition, store_error};
use crate::api_key::{ApiKeyRecord, KeyHash};
use crate::error::{Error, Result};
use crate::store::{ApiKeyStore, RevokeOutcome};

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<()> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(api_key_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match self.precondition(out, "storing an API key")? {
            Precondition::Held => Ok(()),
            Precondition::Failed => Err(Error::unexpected("this API key exists already")),
        }
    }

    async fn find_api_key(&self, hash: &KeyHash) -> Result<Option<ApiKeyRecord>> {
        let item = self
            .get_item(keys::api_key_pk(hash), keys::API_KEY, "reading an API key")
            .await?;
        item.as_ref().map(api_key_from_item).transpose()
    }

    async fn revoke_api_key(&self, hash: &KeyHash) -> Result<RevokeOutcome> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::api_key_pk(hash)))
            .key("sk", s(keys::API_KEY))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| store_error("revoking an API key", e))?;
        self.meter.write(out.consumed_capacity());
        Ok(if out.attributes().is_some_and(|a| !a.is_empty()) {
            RevokeOutcome::Revoked
        } else {
            RevokeOutcome::NotFound
        })
    }
}
