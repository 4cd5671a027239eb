//! Authentication methods against a real PostgreSQL 15: one role per `pg_hba.conf` method
//! (trust, password, md5, scram-sha-256), each logging in on both kinds of session.

use crate::common;

use common::{both_fail, params, probe, Probe};
use pgseam_connector_pg::{ErrorClass, SourceError};
use pgseam_testkit::{Postgres, PostgresOptions};

const PLAIN: Probe = Probe {
    replication_encrypted: false,
    replication_channel_bound: false,
    query_encrypted: false,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_password_method_and_clear_errors() {
    let pg = Postgres::start_with(PostgresOptions::default().hba([
        "host all trust_user 127.0.0.1/32 trust",
        "host all pw_user 127.0.0.1/32 password",
        "host all md5_user 127.0.0.1/32 md5",
        "host all scram_user 127.0.0.1/32 scram-sha-256",
    ]))
    .expect("start PostgreSQL");
    pg.psql(
        "postgres",
        "CREATE ROLE trust_user LOGIN REPLICATION;
         CREATE ROLE pw_user LOGIN REPLICATION PASSWORD 'pw-secret';
         SET password_encryption = 'scram-sha-256';
         CREATE ROLE scram_user LOGIN REPLICATION PASSWORD 'scram-secret';
         SET password_encryption = 'md5';
         CREATE ROLE md5_user LOGIN REPLICATION PASSWORD 'md5-secret';",
    )
    .unwrap();
    // The md5 role really has an md5 verifier (else the server would run SCRAM for `md5`).
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'md5_user'"
        )
        .unwrap(),
        "md5"
    );

    for (user, password) in [
        ("trust_user", None),
        ("pw_user", Some("pw-secret")),
        ("md5_user", Some("md5-secret")),
        ("scram_user", Some("scram-secret")),
    ] {
        let got = probe(&params(&pg, "127.0.0.1", user, password)).await;
        assert_eq!(got.unwrap(), PLAIN, "login as {user}");
    }

    // Wrong password: the server's message, SQLSTATE 28P01, a configuration error.
    for user in ["pw_user", "md5_user", "scram_user"] {
        let (replication, query) = both_fail(&params(&pg, "127.0.0.1", user, Some("wrong"))).await;
        for err in [&replication, &query] {
            let text = err.to_string();
            assert!(
                text.contains("password authentication failed") && text.contains("28P01"),
                "{user}: {text}"
            );
            assert!(text.contains(user), "{text}");
            assert_eq!(err.class(), ErrorClass::Config);
        }
    }

    // No password configured but the server asks for one: says which key to set.
    for user in ["pw_user", "md5_user", "scram_user"] {
        let (replication, query) = both_fail(&params(&pg, "127.0.0.1", user, None)).await;
        for err in [&replication, &query] {
            assert!(
                matches!(err, SourceError::PasswordRequired { .. }),
                "{user}: {err:?}"
            );
            assert!(
                err.to_string().contains("database.password is not set"),
                "{err}"
            );
            assert_eq!(err.class(), ErrorClass::Config);
        }
    }

    // A role pg_hba.conf has no line for: the server's reason.
    pg.psql("postgres", "CREATE ROLE nobody LOGIN PASSWORD 'x'")
        .unwrap();
    let (replication, query) = both_fail(&params(&pg, "127.0.0.1", "nobody", Some("x"))).await;
    for err in [&replication, &query] {
        assert!(err.to_string().contains("no pg_hba.conf entry"), "{err}");
    }
}
