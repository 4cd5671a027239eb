//! The publication that tells pgoutput which tables to decode.
//!
//! Debezium's `publication.autocreate.mode`:
//! - `all_tables` (default): create `FOR ALL TABLES` if missing; an existing one is used as is.
//! - `filtered`: create it, or reset it (`ALTER PUBLICATION … SET TABLE`), to exactly the
//!   tables the include/exclude lists select.
//! - `disabled`: it must exist; pgseam never changes it.
//!
//! The captured tables are those the publication publishes that the filters also include.
//!
//! # Partitioned tables and `publish.via.partition.root`
//!
//! pgoutput sends a change of a partitioned table's row under one relation, which decides its
//! topic:
//! - **`publish_via_partition_root = false`** (PostgreSQL's and Debezium's default): under its
//!   leaf partition. `pg_publication_tables` lists the leaves, never the partitioned table.
//! - **`publish_via_partition_root = true`**: under the topmost partitioned ancestor that the
//!   publication contains (a `FOR ALL TABLES` publication contains every root). A partition
//!   listed without its ancestor is still published as itself. `pg_publication_tables` lists
//!   the relations changes are published under.
//!
//! Debezium's `publish.via.partition.root` only adds `publish_via_partition_root = true` to the
//! `CREATE PUBLICATION` it runs; an existing publication is used as it is (`filtered` resets
//! its tables, never this option). pgseam creates it the same way, then follows what the
//! publication actually does — the stream has no other choice — and the snapshot with it: a
//! partitioned table published via its root is read leaf by leaf and its rows emitted once,
//! with the root's schema, on the root's topic (see `snapshot::plan`). When an existing
//! publication disagrees with the configuration, `true` asked for and the publication
//! publishing leaves is an error (the topics would not be the ones asked for); `false` (the
//! default) with a publication publishing via the root is logged and followed.
//!
//! A table the filters select whose changes the publication sends under a relation the filters
//! exclude — a partition published via an excluded root, or a partitioned table whose
//! partitions are published individually and excluded — would silently lose its changes:
//! [`check_partition_routing`] makes that a start error naming the tables and the fixes.

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::catalog::{self, quote_identifier, TableIdentity};
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

/// Makes sure the publication exists as the mode requires (created with
/// `publish_via_partition_root = true` when `via_root`). Returns whether it publishes via the
/// partition root, as it is once this returns (see the module docs).
pub async fn ensure_publication(
    client: &Client,
    name: &str,
    mode: PublicationAutocreate,
    included: &[TableIdentity],
    via_root: bool,
) -> Result<bool> {
    let existing = publishes_via_root(client, name).await?;
    if let Some(actual) = existing {
        check_via_root(name, via_root, actual)?;
    }
    let exists = existing.is_some();
    let with = if via_root {
        " WITH (publish_via_partition_root = true)"
    } else {
        ""
    };
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
        | (PublicationAutocreate::NoTables, true) => return Ok(existing.unwrap_or(via_root)),
        (PublicationAutocreate::AllTables, false) => {
            format!(
                "CREATE PUBLICATION {} FOR ALL TABLES{with}",
                quote_identifier(name)
            )
        }
        (PublicationAutocreate::NoTables, false) => {
            format!("CREATE PUBLICATION {}{with}", quote_identifier(name))
        }
        (PublicationAutocreate::Filtered, _) if included.is_empty() => {
            return Err(SourceError::Setup(format!(
                "publication.autocreate.mode=filtered but table.include.list/table.exclude.list \
                 select no table: cannot create publication `{name}`"
            )))
        }
        (PublicationAutocreate::Filtered, false) => {
            format!(
                "CREATE PUBLICATION {} FOR TABLE {}{with}",
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
        })?;
    Ok(existing.unwrap_or(via_root))
}

/// `pg_publication.pubviaroot` of the publication; `None` when it does not exist. Before
/// PostgreSQL 13 the column does not exist and the answer is `false`.
pub async fn publishes_via_root(client: &Client, name: &str) -> Result<Option<bool>> {
    Ok(client
        .query_opt(
            "SELECT coalesce((to_jsonb(p) ->> 'pubviaroot')::bool, false) FROM pg_publication p \
             WHERE p.pubname = $1",
            &[&name],
        )
        .await
        .map_err(|error| SourceError::Query {
            context: format!("cannot look up publication {name}"),
            error,
        })?
        .map(|row| row.get(0)))
}

/// An existing publication against `publish.via.partition.root` (see the module docs).
fn check_via_root(name: &str, configured: bool, actual: bool) -> Result<()> {
    match (configured, actual) {
        (true, false) => Err(SourceError::Setup(format!(
            "publish.via.partition.root=true, but the existing publication `{name}` publishes the changes of \
             partitioned tables under their partitions (publish_via_partition_root = false), so they would go to \
             the partitions' topics: run ALTER PUBLICATION {} SET (publish_via_partition_root = true), or drop the \
             publication so that pgseam creates it, or set publish.via.partition.root=false",
            quote_identifier(name)
        ))),
        (false, true) => {
            tracing::warn!(
                publication = name,
                "the existing publication publishes partitioned tables via their root (publish_via_partition_root = \
                 true) while publish.via.partition.root=false: pgseam follows the publication, so the changes and \
                 snapshot rows of every partition go to its root table's topic"
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A partitioned table or a partition: its name and parent (`None` for a root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionNode {
    pub schema: String,
    pub table: String,
    pub parent: Option<u32>,
}

/// Every partitioned table and partition of the database, by OID.
pub type PartitionTree = HashMap<u32, PartitionNode>;

/// Reads the database's partition hierarchy.
pub async fn partition_tree(client: &Client) -> Result<PartitionTree> {
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text, \
                    (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'p' OR c.relispartition",
            &[],
        )
        .await
        .map_err(|error| SourceError::Query {
            context: "cannot read the partition hierarchy".into(),
            error,
        })?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                row.get(0),
                PartitionNode {
                    schema: row.get(1),
                    table: row.get(2),
                    parent: row.get(3),
                },
            )
        })
        .collect())
}

/// The captured tables: the relations the publication publishes changes under that the
/// filters select (`filtered`), after [`check_partition_routing`].
pub async fn captured_tables(
    client: &Client,
    publication: &str,
    filtered: Vec<TableIdentity>,
) -> Result<Vec<TableIdentity>> {
    let published = catalog::publication_tables(client, publication).await?;
    if filtered.iter().any(|t| {
        t.partitioned
            || !published
                .iter()
                .any(|(s, n)| *s == t.schema && *n == t.table)
    }) {
        let tree = partition_tree(client).await?;
        check_partition_routing(publication, &filtered, &published, &tree)
            .map_err(SourceError::Setup)?;
    }
    Ok(catalog::keep_published(filtered, &published))
}

/// Fails when a table the filters select has its changes published under a relation they
/// exclude (see the module docs); the message names the tables and the fixes.
pub fn check_partition_routing(
    publication: &str,
    filtered: &[TableIdentity],
    published: &[(String, String)],
    tree: &PartitionTree,
) -> std::result::Result<(), String> {
    let name = |oid: &u32| tree.get(oid).map(|n| format!("{}.{}", n.schema, n.table));
    let is_published = |n: &PartitionNode| {
        published
            .iter()
            .any(|(s, t)| *s == n.schema && *t == n.table)
    };
    let is_filtered = |oid: u32| filtered.iter().any(|t| t.oid == oid);
    let ancestors = |mut oid: u32| {
        let mut chain = Vec::new();
        while let Some(parent) = tree.get(&oid).and_then(|n| n.parent) {
            chain.push(parent);
            oid = parent;
        }
        chain
    };
    let mut problems = Vec::new();
    for table in filtered {
        if published
            .iter()
            .any(|(s, t)| *s == table.schema && *t == table.table)
        {
            continue;
        }
        // A partition published under its topmost published ancestor.
        if let Some(root) = ancestors(table.oid)
            .into_iter()
            .rev()
            .find(|a| tree.get(a).is_some_and(is_published))
        {
            if !is_filtered(root) {
                let root = name(&root).unwrap_or_default();
                problems.push(format!(
                    "partition `{}` is published under its partitioned table `{root}` \
                     (publish_via_partition_root = true), which the filters exclude: include `{root}` in \
                     table.include.list (its topic carries the rows of all its partitions)",
                    table.qualified_name()
                ));
            }
            continue;
        }
        if table.partitioned {
            let mut excluded: Vec<String> = tree
                .iter()
                .filter(|(oid, node)| {
                    is_published(node)
                        && !is_filtered(**oid)
                        && ancestors(**oid).contains(&table.oid)
                })
                .filter_map(|(oid, _)| name(oid))
                .collect();
            excluded.sort();
            if !excluded.is_empty() {
                problems.push(format!(
                    "partitioned table `{}` is published as its partitions (publish_via_partition_root = false), \
                     and the filters exclude {}: include them in table.include.list (a topic per partition), or \
                     publish via the root (publish.via.partition.root=true for a publication pgseam creates, or \
                     ALTER PUBLICATION {} SET (publish_via_partition_root = true)) for one topic",
                    table.qualified_name(),
                    excluded
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    quote_identifier(publication)
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "publication `{publication}` would send the changes of tables the filters select under tables they \
         exclude, and those changes would be dropped: {}",
        problems.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(oid: u32, table: &str, partitioned: bool) -> TableIdentity {
        TableIdentity {
            oid,
            schema: "public".into(),
            table: table.into(),
            replica_identity: 'd',
            has_primary_key: true,
            partitioned,
        }
    }

    /// m (1) → m_eu (2), m_us (3); m_us → m_us_a (4) (sub-partitioned).
    fn tree() -> PartitionTree {
        let node = |table: &str, parent: Option<u32>| PartitionNode {
            schema: "public".into(),
            table: table.into(),
            parent,
        };
        [
            (1, node("m", None)),
            (2, node("m_eu", Some(1))),
            (3, node("m_us", Some(1))),
            (4, node("m_us_a", Some(3))),
        ]
        .into_iter()
        .collect()
    }

    fn published(tables: &[&str]) -> Vec<(String, String)> {
        tables
            .iter()
            .map(|t| ("public".to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_root_with_its_leaves_selected_is_fine_either_way() {
        let all = vec![
            identity(1, "m", true),
            identity(2, "m_eu", false),
            identity(3, "m_us", true),
            identity(4, "m_us_a", false),
        ];
        // leaves published (publish_via_partition_root = false)
        assert!(
            check_partition_routing("p", &all, &published(&["m_eu", "m_us_a"]), &tree()).is_ok()
        );
        // root published
        assert!(check_partition_routing("p", &all, &published(&["m"]), &tree()).is_ok());
    }

    #[test]
    fn leaves_published_via_an_excluded_root_are_an_error() {
        let leaves = vec![identity(2, "m_eu", false), identity(4, "m_us_a", false)];
        let err = check_partition_routing("p", &leaves, &published(&["m"]), &tree()).unwrap_err();
        assert!(
            err.contains(
                "partition `public.m_eu` is published under its partitioned table `public.m`"
            ),
            "{err}"
        );
        assert!(err.contains("partition `public.m_us_a`"), "{err}");
        // published as themselves (the root is not in the publication): fine
        assert!(
            check_partition_routing("p", &leaves, &published(&["m_eu", "m_us_a"]), &tree()).is_ok()
        );
    }

    #[test]
    fn a_root_whose_partitions_are_published_and_excluded_is_an_error() {
        let root = vec![identity(1, "m", true)];
        let err = check_partition_routing("p", &root, &published(&["m_eu", "m_us_a"]), &tree())
            .unwrap_err();
        assert!(
            err.contains("partitioned table `public.m` is published as its partitions")
                && err.contains("`public.m_eu`, `public.m_us_a`"),
            "{err}"
        );
        // nothing of it published (e.g. a hand-made publication without it): not an error
        assert!(check_partition_routing("p", &root, &published(&[]), &tree()).is_ok());
    }

    #[test]
    fn an_existing_publication_that_does_not_publish_via_the_root_when_asked_is_an_error() {
        let err = check_via_root("p", true, false).unwrap_err().to_string();
        assert!(
            err.contains("ALTER PUBLICATION \"p\" SET (publish_via_partition_root = true)"),
            "{err}"
        );
        assert!(check_via_root("p", false, true).is_ok());
        assert!(check_via_root("p", true, true).is_ok());
        assert!(check_via_root("p", false, false).is_ok());
    }
}
