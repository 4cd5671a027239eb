//! Shared helpers of the connector-pg integration tests: connection parameters for a testkit
//! cluster, and a probe that opens both kinds of session and reports whether they are encrypted.

#![allow(dead_code, unreachable_pub)]

use pgseam_connector_pg::connection::{connect_query_session, ReplicationConnection};
use pgseam_connector_pg::{ConnectParams, SourceError, TlsSettings};
use pgseam_testkit::Postgres;

pub fn params(pg: &Postgres, host: &str, user: &str, password: Option<&str>) -> ConnectParams {
    ConnectParams {
        host: host.to_owned(),
        port: pg.port(),
        user: user.to_owned(),
        password: password.map(str::to_owned),
        dbname: "postgres".to_owned(),
        application_name: "pgseam-test".to_owned(),
        tls: TlsSettings::default(),
    }
}

/// What a successful probe saw.
#[derive(Debug, PartialEq, Eq)]
pub struct Probe {
    /// The replication connection runs over TLS.
    pub replication_encrypted: bool,
    /// Its SCRAM login was bound to the TLS channel.
    pub replication_channel_bound: bool,
    /// The query session's backend reports TLS in `pg_stat_ssl`.
    pub query_encrypted: bool,
}

/// Opens a replication connection (and runs IDENTIFY_SYSTEM on it) and a query session.
pub async fn probe(params: &ConnectParams) -> Result<Probe, SourceError> {
    let mut replication = ReplicationConnection::connect(params).await?;
    let rows = replication.simple_query("IDENTIFY_SYSTEM").await?;
    assert_eq!(rows.len(), 1, "IDENTIFY_SYSTEM returns one row");
    let replication_encrypted = replication.is_encrypted();
    let replication_channel_bound = replication.is_channel_bound();
    replication.close().await?;
    let client = connect_query_session(params).await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    Ok(Probe {
        replication_encrypted,
        replication_channel_bound,
        query_encrypted: row.get(0),
    })
}

/// Both kinds of session must fail; returns the two errors' texts.
pub async fn both_fail(params: &ConnectParams) -> (SourceError, SourceError) {
    let replication = match ReplicationConnection::connect(params).await {
        Ok(_) => panic!("replication connection unexpectedly succeeded with {params:?}"),
        Err(err) => err,
    };
    let query = match connect_query_session(params).await {
        Ok(_) => panic!("query session unexpectedly succeeded with {params:?}"),
        Err(err) => err,
    };
    (replication, query)
}

/// first … last overall; per table first_in_data_collection … last_in_data_collection; tables
/// contiguous.
pub fn check_markers(markers: &[(String, pgseam_model::SnapshotMarker)]) {
    use pgseam_model::SnapshotMarker::*;
    let n = markers.len();
    assert!(n >= 2);
    assert_eq!(markers[0].1, First);
    assert_eq!(markers[n - 1].1, Last);
    let mut seen = std::collections::HashSet::new();
    for i in 0..n {
        let table = &markers[i].0;
        let starts = i == 0 || &markers[i - 1].0 != table;
        let ends = i == n - 1 || &markers[i + 1].0 != table;
        if starts {
            assert!(seen.insert(table.clone()), "{table} is not contiguous");
        }
        let expected = if i == n - 1 {
            Last
        } else if i == 0 {
            First
        } else if ends {
            LastInDataCollection
        } else if starts {
            FirstInDataCollection
        } else {
            True
        };
        assert_eq!(markers[i].1, expected, "marker {i} of {table}");
    }
}
