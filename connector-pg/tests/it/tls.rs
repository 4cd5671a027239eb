//! TLS against a real PostgreSQL 15 with `ssl = on`, a throwaway certificate authority and a
//! server certificate for `localhost` only, generated here with the openssl CLI. The server
//! accepts TCP logins only over TLS (`hostssl`), and one role only with a client certificate.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{both_fail, params, probe, Probe};
use pgseam_connector_pg::{ErrorClass, SslMode, TlsSettings};
use pgseam_testkit::{Postgres, PostgresOptions};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>.crt`, `<name>.key`).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// A certificate for `cn` signed by `ca`, with subjectAltName `san` if given.
fn make_cert(dir: &Path, ca: &str, name: &str, cn: &str, san: Option<&str>) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        match san {
            Some(san) => format!("subjectAltName={san}\n"),
            None => "basicConstraints=CA:FALSE\n".to_owned(),
        },
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d, "ca");
    make_ca(d, "other_ca");
    make_cert(d, "ca", "server", "localhost", Some("DNS:localhost"));
    make_cert(d, "ca", "client", "certuser", None);
    // The client key again, encrypted (PEM PKCS#8) and as unencrypted PKCS#8 DER (pgjdbc's .pk8).
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "client.key",
            "-out",
            "client.enc.key",
            "-passout",
            "pass:s3cret",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "client.key",
            "-outform",
            "DER",
            "-out",
            "client.pk8",
        ],
    );
    // The server runs as the OS user postgres and insists on a private key file only it reads.
    for args in [
        vec!["755", d.to_str().unwrap()],
        vec![
            "644",
            d.join("server.crt").to_str().unwrap(),
            d.join("ca.crt").to_str().unwrap(),
        ],
        vec!["600", d.join("server.key").to_str().unwrap()],
    ] {
        assert!(Command::new("chmod")
            .args(&args)
            .status()
            .unwrap()
            .success());
    }
    if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
        assert!(Command::new("chown")
            .args(["postgres", d.join("server.key").to_str().unwrap()])
            .status()
            .unwrap()
            .success());
    }
    Pki { dir }
}

fn start_tls_server(pki: &Pki) -> Postgres {
    let pg = Postgres::start_with(
        PostgresOptions::default()
            .conf("ssl = on")
            .conf(format!(
                "ssl_cert_file = '{}'",
                pki.path("server.crt").display()
            ))
            .conf(format!(
                "ssl_key_file = '{}'",
                pki.path("server.key").display()
            ))
            .conf(format!("ssl_ca_file = '{}'", pki.path("ca.crt").display()))
            .hba([
                "hostssl all certuser 127.0.0.1/32 cert",
                "hostssl all all 127.0.0.1/32 scram-sha-256",
            ]),
    )
    .expect("start PostgreSQL with ssl = on");
    pg.psql("postgres", "CREATE ROLE certuser LOGIN REPLICATION")
        .unwrap();
    pg.psql(
        "postgres",
        "CREATE ROLE tlsuser LOGIN REPLICATION PASSWORD 'tlspw'",
    )
    .unwrap();
    pg
}

fn tls(mode: SslMode, root: Option<PathBuf>) -> TlsSettings {
    TlsSettings {
        mode,
        root_cert: root,
        ..TlsSettings::default()
    }
}

/// SCRAM over TLS: encrypted and channel-bound.
const ENCRYPTED: Probe = Probe {
    replication_encrypted: true,
    replication_channel_bound: true,
    query_encrypted: true,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_modes_against_a_hostssl_only_server() {
    let pki = make_pki();
    let pg = start_tls_server(&pki);
    let base = |host: &str, settings: TlsSettings| {
        let mut p = params(&pg, host, "tlsuser", Some("tlspw"));
        p.tls = settings;
        p
    };

    // prefer (Debezium's default) and require: encrypted, no certificate check.
    for mode in [SslMode::Prefer, SslMode::Require, SslMode::Allow] {
        let got = probe(&base("127.0.0.1", tls(mode, None))).await;
        assert_eq!(got.unwrap(), ENCRYPTED, "sslmode={}", mode.as_str());
    }
    // require does not check the chain: a wrong CA file is not even consulted.
    let got = probe(&base(
        "127.0.0.1",
        tls(SslMode::Require, Some(pki.path("other_ca.crt"))),
    ))
    .await;
    assert_eq!(got.unwrap(), ENCRYPTED);

    // verify-full with the right CA and the certificate's host name.
    let got = probe(&base(
        "localhost",
        tls(SslMode::VerifyFull, Some(pki.path("ca.crt"))),
    ))
    .await;
    assert_eq!(got.unwrap(), ENCRYPTED, "verify-full, host localhost");

    // verify-ca ignores the host name.
    let got = probe(&base(
        "127.0.0.1",
        tls(SslMode::VerifyCa, Some(pki.path("ca.crt"))),
    ))
    .await;
    assert_eq!(got.unwrap(), ENCRYPTED, "verify-ca, host 127.0.0.1");

    // verify-full with a host the certificate does not name (it names only localhost).
    let (replication, query) = both_fail(&base(
        "127.0.0.1",
        tls(SslMode::VerifyFull, Some(pki.path("ca.crt"))),
    ))
    .await;
    for err in [&replication, &query] {
        let text = err.to_string();
        assert!(text.contains("address mismatch"), "{text}");
        assert!(text.contains("verify-full"), "{text}");
        assert_eq!(err.class(), ErrorClass::Config, "{text}");
    }

    // verify-ca with a CA that did not sign the server certificate.
    let (replication, query) = both_fail(&base(
        "localhost",
        tls(SslMode::VerifyCa, Some(pki.path("other_ca.crt"))),
    ))
    .await;
    for err in [&replication, &query] {
        let text = err.to_string();
        assert!(
            text.contains("server certificate is not accepted"),
            "{text}"
        );
        // "self-signed certificate in certificate chain" (the server sends its CA along) or
        // "unable to get local issuer certificate", depending on the chain the server sends.
        assert!(
            text.contains("certificate") && text.contains("verify-ca"),
            "{text}"
        );
    }

    // verify-ca without any root certificate: a setup error naming the key.
    let mut no_root = base("localhost", tls(SslMode::VerifyCa, None));
    no_root.tls.root_cert = None;
    std::env::set_var("HOME", pki.dir.path()); // no ~/.postgresql/root.crt there
    let (replication, query) = both_fail(&no_root).await;
    for err in [&replication, &query] {
        assert!(err.to_string().contains("database.sslrootcert"), "{err}");
    }

    // disable against a hostssl-only server: pg_hba's own words, as a login rejection.
    let (replication, query) = both_fail(&base("127.0.0.1", tls(SslMode::Disable, None))).await;
    for err in [&replication, &query] {
        let text = err.to_string();
        assert!(text.contains("no pg_hba.conf entry"), "{text}");
        assert!(text.contains("no encryption"), "{text}");
        assert!(text.contains("SQLSTATE 28000"), "{text}");
        assert_eq!(err.class(), ErrorClass::Config, "{text}");
    }

    // Client certificates: PEM key, encrypted PEM key with sslpassword, PKCS#8 DER key.
    for (key, password) in [
        ("client.key", None),
        ("client.enc.key", Some("s3cret")),
        ("client.pk8", None),
    ] {
        let mut p = params(&pg, "localhost", "certuser", None);
        p.tls = TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some(pki.path("ca.crt")),
            cert: Some(pki.path("client.crt")),
            key: Some(pki.path(key)),
            key_password: password.map(str::to_owned),
        };
        let got = probe(&p).await.unwrap();
        // Certificate login: no SCRAM, so nothing to bind.
        assert_eq!(
            got,
            Probe {
                replication_channel_bound: false,
                ..ENCRYPTED
            },
            "client key {key}"
        );
    }
    // An encrypted key without its password: a setup error that says so.
    let mut p = params(&pg, "localhost", "certuser", None);
    p.tls = TlsSettings {
        mode: SslMode::Require,
        cert: Some(pki.path("client.crt")),
        key: Some(pki.path("client.enc.key")),
        ..TlsSettings::default()
    };
    let (replication, _) = both_fail(&p).await;
    assert!(
        replication.to_string().contains("database.sslpassword"),
        "{replication}"
    );
    // No client certificate for the cert-only role: the server's rejection.
    let mut p = params(&pg, "localhost", "certuser", None);
    p.tls = tls(SslMode::Require, None);
    let (replication, query) = both_fail(&p).await;
    for err in [&replication, &query] {
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_against_a_server_without_tls_fails_and_prefer_falls_back() {
    let pg = Postgres::start().expect("start PostgreSQL");
    let mut p = params(&pg, "127.0.0.1", "postgres", Some("postgres"));
    p.tls = tls(SslMode::Require, None);
    let (replication, query) = both_fail(&p).await;
    for err in [&replication, &query] {
        let text = err.to_string();
        assert!(text.contains("does not accept TLS"), "{text}");
        assert!(text.contains("sslmode=require"), "{text}");
    }
    for mode in [SslMode::Prefer, SslMode::Allow, SslMode::Disable] {
        p.tls = tls(mode, None);
        assert_eq!(
            probe(&p).await.unwrap(),
            Probe {
                replication_encrypted: false,
                replication_channel_bound: false,
                query_encrypted: false
            },
            "sslmode={}",
            mode.as_str()
        );
    }
}
