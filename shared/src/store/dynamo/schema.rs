//! Creates a table exactly as `infra/template.yaml` defines it, so the tests and
//! the local stack run against the table production gets: code and infra cannot
//! drift apart.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use serde_yaml::Value;

use crate::error::{Error, Result};

/// The SAM template, built into the binary for the local stack and the tests.
pub const SAM_TEMPLATE: &str = include_str!("../../../../infra/template.yaml");

/// The table resource's definition, read from a SAM/CloudFormation template.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDefinition {
    pub attributes: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeySchemaElement>,
    pub indexes: Vec<GlobalSecondaryIndex>,
    pub ttl_attribute: Option<String>,
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::unexpected(format!("infra/template.yaml: {what}"))
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value> {
    v.get(name)
        .ok_or_else(|| bad(format!("the table lacks {name}")))
}

fn text<'a>(v: &'a Value, name: &str) -> Result<&'a str> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| bad(format!("{name} must be a string")))
}

fn key_schema(v: &Value) -> Result<Vec<KeySchemaElement>> {
    field(v, "KeySchema")?
        .as_sequence()
        .ok_or_else(|| bad("KeySchema must be a list"))?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(k, "AttributeName")?)
                .key_type(KeyType::from(text(k, "KeyType")?))
                .build()
                .map_err(bad)
        })
        .collect()
}

impl TableDefinition {
    /// Reads the first `AWS::DynamoDB::Table` of a template.
    pub fn from_sam_template(yaml: &str) -> Result<TableDefinition> {
        let doc: Value = serde_yaml::from_str(yaml).map_err(bad)?;
        let resources = field(&doc, "Resources")?
            .as_mapping()
            .ok_or_else(|| bad("Resources must be a mapping"))?;
        let table = resources
            .values()
            .find(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
            .ok_or_else(|| bad("no AWS::DynamoDB::Table resource"))?;
        let props = field(table, "Properties")?;

        let attributes = field(props, "AttributeDefinitions")?
            .as_sequence()
            .ok_or_else(|| bad("AttributeDefinitions must be a list"))?
            .iter()
            .map(|a| {
                AttributeDefinition::builder()
                    .attribute_name(text(a, "AttributeName")?)
                    .attribute_type(ScalarAttributeType::from(text(a, "AttributeType")?))
                    .build()
                    .map_err(bad)
            })
            .collect::<Result<_>>()?;

        let mut indexes = Vec::new();
        if let Some(list) = props
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
        {
            for index in list {
                let projection = field(index, "Projection")?;
                let non_key = projection
                    .get("NonKeyAttributes")
                    .and_then(Value::as_sequence)
                    .map(|l| {
                        l.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    });
                indexes.push(
                    GlobalSecondaryIndex::builder()
                        .index_name(text(index, "IndexName")?)
                        .set_key_schema(Some(key_schema(index)?))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::from(text(
                                    projection,
                                    "ProjectionType",
                                )?))
                                .set_non_key_attributes(non_key)
                                .build(),
                        )
                        .build()
                        .map_err(bad)?,
                );
            }
        }

        let ttl_attribute = props
            .get("TimeToLiveSpecification")
            .filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true))
            .map(|t| text(t, "AttributeName").map(str::to_owned))
            .transpose()?;

        Ok(TableDefinition {
            attributes,
            key_schema: key_schema(props)?,
            indexes,
            ttl_attribute,
        })
    }

    /// The definition in this repository's `infra/template.yaml`.
    pub fn coedit() -> Result<TableDefinition> {
        TableDefinition::from_sam_template(SAM_TEMPLATE)
    }

    /// Creates the table (on demand billing, as deployed) and turns its TTL on.
    /// An existing table of that name is left as it is.
    pub async fn create(&self, client: &Client, name: &str) -> Result<()> {
        let created = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(self.attributes.clone()))
            .set_key_schema(Some(self.key_schema.clone()))
            .set_global_secondary_indexes((!self.indexes.is_empty()).then(|| self.indexes.clone()))
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                return Ok(());
            }
            Err(e) => {
                return Err(Error::unavailable(format!(
                    "creating table {name}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )));
            }
        }
        if let Some(attribute) = &self.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attribute)
                        .enabled(true)
                        .build()
                        .map_err(bad)?,
                )
                .send()
                .await
                .map_err(|e| {
                    Error::unavailable(format!(
                        "enabling TTL on {name}: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    ))
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_table_from_the_sam_template() {
        let def = TableDefinition::coedit().unwrap();
        let keys: Vec<_> = def.key_schema.iter().map(|k| k.attribute_name()).collect();
        assert_eq!(keys, ["pk", "sk"]);
        assert_eq!(def.ttl_attribute.as_deref(), Some("ttl"));
        assert_eq!(def.indexes.len(), 1);
        assert_eq!(def.indexes[0].index_name(), "sweep");
    }
}
