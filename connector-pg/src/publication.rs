//! The publication that tells pgoutput which tables to decode.
//!
//! Debezium's `publication.autocreate.mode`:
//! - `all_tables` (default): create `FOR ALL TABLES` if missing; an existing one is used as is.
//! - `filtered`: create it, or reset it (`ALTER PUBLICATION … SET TABLE`), to exactly the
//!   tables the include/exclude lists select.
//! - `disabled`: it must exist; pgseam never changes it.
//!
//! The captured tables are those the publication publishes that the filters also include.

use tokio_postgres::Client;

use crate::catalog::{quote_identifier, TableIdentity};
use crate::error::{Result, SourceError};

/// Debezium's `publication.autocreate.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicationAutocreate {
    AllTables,
    Filtered,
    Disabled,
    /// Debezium's `no_tables`: create an empty publication if missing (tables added by hand).
    NoTables,
}

/// Makes sure the publication exists as the mode requires.
pub async fn ensure_publication(
    client: &Client,
    name: &str,
    mode: PublicationAutocreate,
    included: &[TableIdentity],
) -> Result<()> {
    let exists = client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
        .await
        .map_err(|error| SourceError::Query {
            context: format!("cannot look up publication {name}"),
            error,
        })?
        .is_some();
    let table_list = || {
        included
            .iter()
            .map(|t| {
                format!(
                    "{}.{}",
                    quote_identifier(&t.schema),
                    quote_identifier(&t.table)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let statement = match (mode, exists) {
        (PublicationAutocreate::Disabled, false) => {
            return Err(SourceError::Setup(format!(
                "publication `{name}` does not exist and publication.autocreate.mode=disabled: \
                 create it (CREATE PUBLICATION {name} FOR TABLE …) or choose another mode"
            )))
        }
        (PublicationAutocreate::Disabled, true)
        | (PublicationAutocreate::AllTables, true)
        | (PublicationAutocreate::NoTables, true) => return Ok(()),
        (PublicationAutocreate::AllTables, false) => {
            format!(
                "CREATE PUBLICATION {} FOR ALL TABLES",
                quote_identifier(name)
            )
        }
        (PublicationAutocreate::NoTables, false) => {
            format!("CREATE PUBLICATION {}", quote_identifier(name))
        }
        (PublicationAutocreate::Filtered, _) if included.is_empty() => {
            return Err(SourceError::Setup(format!(
                "publication.autocreate.mode=filtered but table.include.list/table.exclude.list \
                 select no table: cannot create publication `{name}`"
            )))
        }
        (PublicationAutocreate::Filtered, false) => {
            format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote_identifier(name),
                table_list()
            )
        }
        (PublicationAutocreate::Filtered, true) => {
            format!(
                "ALTER PUBLICATION {} SET TABLE {}",
                quote_identifier(name),
                table_list()
            )
        }
    };
    tracing::info!(publication = name, statement = %statement, "configuring publication");
    client
        .batch_execute(&statement)
        .await
        .map_err(|error| SourceError::Query {
            context: format!("cannot create or alter publication {name}"),
            error,
        })
}
