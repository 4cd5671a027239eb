//! TLS for every session pgseam opens: the hand-written replication connection and the
//! tokio-postgres query sessions, configured by Debezium's `database.ssl*` properties.
//!
//! ```text
//! client                                   server
//!   SSLRequest (length 8, code 80877103) ──►
//!                                   ◄── 'S' (go ahead) | 'N' (no TLS here)
//!   TLS handshake (ClientHello …)      ◄─►                     only after 'S'
//!   StartupMessage …  (inside TLS from here on)
//! ```
//!
//! # Modes (`database.sslmode`, pgjdbc's semantics, which Debezium inherits)
//!
//! | mode | TLS | certificate chain checked | host name checked | without TLS |
//! |---|---|---|---|---|
//! | `disable` | never | – | – | always |
//! | `allow` | only if the server rejects the plain login (pg_hba) | no | no | first |
//! | `prefer` (default) | if the server offers it | no | no | on 'N', or if the server rejects the TLS login (pg_hba `hostnossl`) |
//! | `require` | always | no | no | error |
//! | `verify-ca` | always | yes, against `database.sslrootcert` | no | error |
//! | `verify-full` | always | yes | yes (SAN / CN vs `database.hostname`) | error |
//!
//! `require` does not look at certificates, as in pgjdbc (libpq would verify the chain when a
//! root certificate file exists). For `verify-ca` / `verify-full` without `database.sslrootcert`,
//! `~/.postgresql/root.crt` is used if present (libpq's and pgjdbc's default), else the start
//! fails and names the key. A client certificate is sent when `database.sslcert` is set; its key
//! (`database.sslkey`) may be PEM (PKCS#1 or PKCS#8, encrypted with `database.sslpassword` or
//! not) or PKCS#8 DER (pgjdbc's `.pk8`).
//!
//! # Why OpenSSL
//!
//! librdkafka (bundled by `rdkafka`, feature `ssl`) links OpenSSL already, so the binary carries
//! one TLS stack, not two; `postgres-openssl` gives tokio-postgres the same configuration, and
//! `tokio-openssl` wraps the replication connection's `TcpStream`. PEM and DER keys, encrypted
//! keys and verification of IP-address hosts come with it.
//!
//! Over TLS, both kinds of session use SCRAM channel binding (`SCRAM-SHA-256-PLUS` with
//! `tls-server-end-point`, RFC 5929) when the server offers it, so a man in the middle that
//! terminates TLS cannot relay the password exchange.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509VerifyResult;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::error::{Result, SourceError};

/// `database.sslmode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    /// Debezium's default.
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Debezium's property value.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// The connection attempts this mode makes, in order. A later attempt is made only when
    /// the server rejected the previous one's login in `pg_hba.conf` (SQLSTATE 28000).
    pub(crate) fn attempts(self) -> &'static [Attempt] {
        match self {
            SslMode::Disable => &[Attempt::Plain],
            SslMode::Allow => &[Attempt::Plain, Attempt::Tls],
            SslMode::Prefer => &[Attempt::TlsIfOffered, Attempt::Plain],
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => &[Attempt::Tls],
        }
    }
}

/// One way of opening the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    Plain,
    /// TLS if the server answers 'S', plain on 'N'.
    TlsIfOffered,
    /// TLS or an error.
    Tls,
}

/// Debezium's `database.ssl*` settings.
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// `database.sslmode`.
    pub mode: SslMode,
    /// `database.sslrootcert`: PEM file of the certificate authorities to trust.
    pub root_cert: Option<PathBuf>,
    /// `database.sslcert`: PEM file of the client certificate (chain).
    pub cert: Option<PathBuf>,
    /// `database.sslkey`: the client certificate's private key.
    pub key: Option<PathBuf>,
    /// `database.sslpassword`: the key's passphrase.
    pub key_password: Option<String>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("mode", &self.mode)
            .field("root_cert", &self.root_cert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("key_password", &self.key_password.as_ref().map(|_| "****"))
            .finish()
    }
}

impl TlsSettings {
    /// The OpenSSL client context for these settings. Files are read here, so a missing or
    /// unreadable file is reported before any connection is made.
    pub(crate) fn connector(&self) -> Result<SslConnector> {
        fn setup(
            key: &'static str,
            path: Option<&Path>,
            what: String,
        ) -> impl FnOnce(openssl::error::ErrorStack) -> SourceError {
            let path = path
                .map(|p| format!(" {}", p.display()))
                .unwrap_or_default();
            move |err: openssl::error::ErrorStack| {
                SourceError::Setup(format!("{key}{path}: {what}: {err}"))
            }
        }
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(setup(
            "TLS",
            None,
            "cannot initialise OpenSSL".into(),
        ))?;
        if self.mode == SslMode::Disable {
            return Ok(builder.build());
        }
        if self.mode.verifies() {
            builder.set_verify(SslVerifyMode::PEER);
            let root = match &self.root_cert {
                Some(path) => path.clone(),
                None => default_root_cert().ok_or_else(|| {
                    SourceError::Setup(format!(
                        "database.sslmode={} checks the server certificate, but database.sslrootcert is \
                         not set and ~/.postgresql/root.crt does not exist; set database.sslrootcert to \
                         the PEM file of the certificate authority that signed the server certificate",
                        self.mode.as_str()
                    ))
                })?,
            };
            builder.set_ca_file(&root).map_err(setup(
                "database.sslrootcert",
                Some(&root),
                "cannot load the certificate authorities (PEM expected)".into(),
            ))?;
        } else {
            builder.set_verify(SslVerifyMode::NONE);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                builder.set_certificate_chain_file(cert).map_err(setup(
                    "database.sslcert",
                    Some(cert),
                    "cannot load the client certificate (PEM expected)".into(),
                ))?;
                let pkey = load_private_key(key, self.key_password.as_deref())?;
                builder.set_private_key(&pkey).map_err(setup(
                    "database.sslkey",
                    Some(key),
                    "cannot use the private key".into(),
                ))?;
                builder.check_private_key().map_err(setup(
                    "database.sslkey",
                    Some(key),
                    "the key does not belong to database.sslcert".into(),
                ))?;
            }
            (Some(_), None) => {
                return Err(SourceError::Setup(
                    "database.sslcert is set but database.sslkey is not; set both for a client certificate"
                        .into(),
                ))
            }
            (None, Some(_)) => {
                return Err(SourceError::Setup(
                    "database.sslkey is set but database.sslcert is not; set both for a client certificate"
                        .into(),
                ))
            }
            (None, None) => {}
        }
        Ok(builder.build())
    }

    /// A tokio-postgres TLS connector with the same verification as the replication
    /// connection, and where the reason of a rejected server certificate is recorded (the
    /// handshake error of tokio-postgres only says "certificate verify failed").
    pub(crate) fn make_tls_connect(
        &self,
    ) -> Result<(postgres_openssl::MakeTlsConnector, VerifyFailure)> {
        let mut connector = postgres_openssl::MakeTlsConnector::new(self.connector()?);
        let mode = self.mode;
        let failure = VerifyFailure::default();
        let recorder = failure.clone();
        connector.set_callback(move |config, _host| {
            config.set_verify_hostname(mode == SslMode::VerifyFull);
            if mode.verifies() {
                let recorder = recorder.clone();
                config.set_verify_callback(SslVerifyMode::PEER, move |ok, context| {
                    if !ok {
                        recorder.record(context.error().error_string());
                    }
                    ok
                });
            }
            Ok(())
        });
        Ok((connector, failure))
    }

    /// Runs the TLS handshake over `stream` (after the server answered 'S').
    pub(crate) async fn handshake(
        &self,
        connector: &SslConnector,
        stream: TcpStream,
        host: &str,
        address: &str,
    ) -> Result<SslStream<TcpStream>> {
        let tls_error = |message: String| SourceError::Tls {
            address: address.to_owned(),
            message,
        };
        let mut config = connector
            .configure()
            .map_err(|err| tls_error(err.to_string()))?;
        config.set_verify_hostname(self.mode == SslMode::VerifyFull);
        let ssl = config
            .into_ssl(host)
            .map_err(|err| tls_error(err.to_string()))?;
        let mut stream = SslStream::new(ssl, stream).map_err(|err| tls_error(err.to_string()))?;
        if let Err(err) = Pin::new(&mut stream).connect().await {
            let verify = stream.ssl().verify_result();
            let message = if verify != X509VerifyResult::OK {
                format!(
                    "the server certificate is not accepted ({}; database.sslmode={})",
                    verify.error_string(),
                    self.mode.as_str()
                )
            } else if let Some(io) = err.io_error() {
                return Err(SourceError::Io(std::io::Error::new(
                    io.kind(),
                    io.to_string(),
                )));
            } else {
                err.to_string()
            };
            return Err(tls_error(message));
        }
        Ok(stream)
    }
}

/// RFC 5929 `tls-server-end-point`: the server certificate hashed with its signature's digest
/// (SHA-256 in place of MD5 and SHA-1). `None` when the algorithm has no single digest.
pub(crate) fn tls_server_end_point(ssl: &openssl::ssl::SslRef) -> Option<Vec<u8>> {
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    let certificate = ssl.peer_certificate()?;
    let algorithms = certificate
        .signature_algorithm()
        .object()
        .nid()
        .signature_algorithms()?;
    let digest = match algorithms.digest {
        Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
        nid => MessageDigest::from_nid(nid)?,
    };
    certificate.digest(digest).ok().map(|d| d.to_vec())
}

/// Why the last server certificate was rejected, as OpenSSL's verifier said.
#[derive(Clone, Default)]
pub(crate) struct VerifyFailure(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl VerifyFailure {
    fn record(&self, reason: &str) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert_with(|| reason.to_owned());
        }
    }

    pub(crate) fn take(&self) -> Option<String> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// libpq's and pgjdbc's default root certificate file.
fn default_root_cert() -> Option<PathBuf> {
    let path = Path::new(&std::env::var_os("HOME")?).join(".postgresql/root.crt");
    path.exists().then_some(path)
}

/// Reads a private key: PEM (PKCS#1 / PKCS#8, maybe encrypted) or PKCS#8 DER (maybe encrypted).
fn load_private_key(path: &Path, password: Option<&str>) -> Result<PKey<Private>> {
    let bytes = std::fs::read(path).map_err(|err| {
        SourceError::Setup(format!(
            "database.sslkey {}: cannot read the file: {err}",
            path.display()
        ))
    })?;
    let is_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    let result = match (is_pem, password) {
        (true, Some(password)) => {
            PKey::private_key_from_pem_passphrase(&bytes, password.as_bytes())
        }
        // An empty passphrase from a callback: OpenSSL's default would prompt on the terminal.
        (true, None) => PKey::private_key_from_pem_callback(&bytes, |_| Ok(0)),
        (false, Some(password)) => {
            PKey::private_key_from_pkcs8_passphrase(&bytes, password.as_bytes())
        }
        (false, None) => PKey::private_key_from_der(&bytes),
    };
    result.map_err(|err| {
        let hint = if password.is_none() {
            " (if the key is encrypted, set database.sslpassword)"
        } else {
            " (is database.sslpassword right?)"
        };
        SourceError::Setup(format!(
            "database.sslkey {}: cannot read the private key{hint}: {err}",
            path.display()
        ))
    })
}
