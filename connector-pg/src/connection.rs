//! The replication connection: PostgreSQL's frontend/backend protocol, spoken by hand.
//!
//! tokio-postgres cannot open a `replication=database` connection, so this module does it with
//! the message codecs of `postgres-protocol` over a plain TCP stream:
//!
//! ```text
//! client                                   server
//!   StartupMessage(user, database, replication=database, GUCs) ──►
//!                                   ◄── Authentication* (cleartext | md5 | SASL SCRAM-SHA-256)
//!   PasswordMessage / SASL responses ──►
//!                                   ◄── AuthenticationOk, ParameterStatus*, BackendKeyData, ReadyForQuery
//!   Query("IDENTIFY_SYSTEM" | "CREATE_REPLICATION_SLOT …" | …) ──►
//!                                   ◄── RowDescription, DataRow*, CommandComplete, ReadyForQuery
//!   Query("START_REPLICATION SLOT s LOGICAL X/Y (…)") ──►
//!                                   ◄── CopyBothResponse ('W')
//!                                   ◄── CopyData(XLogData | keepalive) …
//!   CopyData(standby status update) ──►
//! ```
//!
//! The session GUCs that shape the text form of values (`DateStyle`, `TimeZone`,
//! `IntervalStyle`, `extra_float_digits`, `bytea_output`) are sent in the startup packet, so
//! that pgoutput's text tuples and the snapshot's `COPY` text use one and the same form
//! ([`SESSION_PARAMETERS`]); both paths then decode with one decoder.
//!
//! Every session also turns off `statement_timeout`, `idle_in_transaction_session_timeout` and
//! `idle_session_timeout` (a server default must not kill a long snapshot or the idle
//! connection that holds the exported snapshot) and turns on TCP keepalives ([`KEEPALIVE_IDLE`])
//! so that a NAT or firewall does not drop an idle connection silently.
//!
//! With `database.sslmode` other than `disable`, the connection starts with an SSLRequest and
//! runs the startup inside TLS (see [`crate::tls`]).
//!
//! Reading is cancel-safe: [`ReplicationConnection::read_message`] only consumes bytes from an
//! internal buffer, so it can sit in a `tokio::select!` beside timers.

use bytes::{Buf, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{
    ChannelBinding, ScramSha256, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{Result, ServerError, SourceError};
use crate::tls::{Attempt, TlsSettings};

/// Session parameters shared by every connection pgseam opens, so that the text form of values
/// is the same in the stream and the snapshot. `extra_float_digits=1` gives the shortest exact
/// form (PostgreSQL ≥ 12), `TimeZone=UTC` puts `timestamptz` in UTC.
pub const SESSION_PARAMETERS: &[(&str, &str)] = &[
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),
    ("lc_monetary", "C"),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("idle_session_timeout", "0"),
];

/// TCP keepalive: first probe after this much silence. Well below the idle timeouts of common
/// NATs and cloud load balancers (4–15 minutes).
pub const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// TCP keepalive: time between unanswered probes.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// TCP keepalive: unanswered probes before the kernel declares the connection dead.
pub const KEEPALIVE_RETRIES: u32 = 6;

/// Largest backend message accepted. pgoutput messages of a row with many large TOASTed values
/// can be big, but not unbounded: PostgreSQL caps a datum at 1 GB.
const MAX_BACKEND_MESSAGE_BYTES: usize = 1 << 30;

/// Where and how to connect.
#[derive(Clone)]
pub struct ConnectParams {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub application_name: String,
    /// `database.sslmode` and the certificate files.
    pub tls: TlsSettings,
}

impl std::fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectParams")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "****"))
            .field("dbname", &self.dbname)
            .field("tls", &self.tls)
            .finish()
    }
}

impl ConnectParams {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A tokio-postgres configuration for ordinary (non-replication) sessions with the same
    /// session parameters as the replication connection.
    pub fn tokio_postgres_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
        if let Some(password) = &self.password {
            config.password(password);
        }
        let options: Vec<String> = SESSION_PARAMETERS
            .iter()
            .filter(|(name, _)| *name != "client_encoding")
            .map(|(name, value)| format!("-c {}={}", name, value.replace(' ', "\\ ")))
            .collect();
        config.options(options.join(" "));
        config
    }
}

/// One result row of a simple query, every column in text form.
pub type TextRow = Vec<Option<String>>;

/// A backend message as this module sees it. CopyData is kept raw and zero-copy.
pub enum BackendMessage {
    CopyData(Bytes),
    CopyBothResponse,
    CopyDone,
    Other(backend::Message),
}

/// The byte stream under the protocol: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection in `replication=database` mode.
pub struct ReplicationConnection {
    stream: Box<dyn Io>,
    encrypted: bool,
    /// The server certificate's hash for SCRAM channel binding (TLS only).
    tls_server_end_point: Option<Vec<u8>>,
    /// Authenticated with SCRAM-SHA-256-PLUS.
    channel_bound: bool,
    backend_pid: Option<i32>,
    read_buffer: BytesMut,
    write_buffer: BytesMut,
    pub(crate) server_version: Option<String>,
}

impl ReplicationConnection {
    /// Connects and authenticates, with TLS as `database.sslmode` says.
    pub async fn connect(params: &ConnectParams) -> Result<Self> {
        let connector = params.tls.connector()?;
        let attempts = params.tls.mode.attempts();
        let mut attempt_index = 0;
        loop {
            let attempt = attempts[attempt_index];
            match Self::connect_once(params, attempt, &connector).await {
                Ok(connection) => return Ok(connection),
                Err(err) if attempt_index + 1 < attempts.len() && err.is_hba_rejection() => {
                    tracing::info!(
                        address = %params.address(),
                        sslmode = params.tls.mode.as_str(),
                        error = %err,
                        "login rejected by pg_hba.conf; trying again {}",
                        if attempts[attempt_index + 1] == Attempt::Plain { "without TLS" } else { "with TLS" }
                    );
                    attempt_index += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn connect_once(
        params: &ConnectParams,
        attempt: Attempt,
        connector: &openssl::ssl::SslConnector,
    ) -> Result<Self> {
        let address = params.address();
        let mut tcp =
            TcpStream::connect(&address)
                .await
                .map_err(|source| SourceError::Connect {
                    address: address.clone(),
                    source,
                })?;
        tcp.set_nodelay(true)?;
        set_keepalive(&tcp)?;
        let mut tls_server_end_point = None;
        let (stream, encrypted): (Box<dyn Io>, bool) = match attempt {
            Attempt::Plain => (Box::new(tcp), false),
            Attempt::TlsIfOffered | Attempt::Tls => {
                let mut request = BytesMut::with_capacity(8);
                frontend::ssl_request(&mut request);
                tcp.write_all(&request).await?;
                // Exactly one byte: anything the server sent after 'S' belongs to the TLS
                // layer (and makes the handshake fail), never to the protocol.
                let mut answer = [0u8; 1];
                tcp.read_exact(&mut answer).await?;
                match answer[0] {
                    b'S' => {
                        let tls = params
                            .tls
                            .handshake(connector, tcp, &params.host, &address)
                            .await?;
                        tls_server_end_point = crate::tls::tls_server_end_point(tls.ssl());
                        (Box::new(tls), true)
                    }
                    b'N' if attempt == Attempt::TlsIfOffered => (Box::new(tcp), false),
                    b'N' => {
                        return Err(SourceError::Tls {
                            address,
                            message: format!(
                                "the server does not accept TLS connections (ssl = off), but \
                                 database.sslmode={} requires TLS",
                                params.tls.mode.as_str()
                            ),
                        })
                    }
                    other => {
                        return Err(SourceError::Protocol(format!(
                            "unexpected answer {other:#04x} to SSLRequest"
                        )))
                    }
                }
            }
        };
        let mut connection = ReplicationConnection {
            stream,
            encrypted,
            tls_server_end_point,
            channel_bound: false,
            backend_pid: None,
            read_buffer: BytesMut::with_capacity(64 * 1024),
            write_buffer: BytesMut::with_capacity(1024),
            server_version: None,
        };
        let mut startup: Vec<(&str, &str)> = vec![
            ("user", params.user.as_str()),
            ("database", params.dbname.as_str()),
            ("replication", "database"),
            ("application_name", params.application_name.as_str()),
        ];
        startup.extend_from_slice(SESSION_PARAMETERS);
        frontend::startup_message(startup.iter().copied(), &mut connection.write_buffer)?;
        connection.flush().await?;
        connection.authenticate(params).await?;
        tracing::debug!(address = %address, encrypted, "replication connection open");
        Ok(connection)
    }

    /// The server process (walsender) serving this connection, from BackendKeyData.
    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_pid
    }

    /// True if SCRAM authentication was bound to the TLS channel (SCRAM-SHA-256-PLUS).
    pub fn is_channel_bound(&self) -> bool {
        self.channel_bound
    }

    /// True if the connection runs over TLS.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    async fn authenticate(&mut self, params: &ConnectParams) -> Result<()> {
        let password = || {
            params
                .password
                .as_deref()
                .ok_or_else(|| SourceError::PasswordRequired {
                    user: params.user.clone(),
                })
        };
        let auth_error = |server: ServerError| SourceError::Authentication {
            user: params.user.clone(),
            server: Box::new(server),
        };
        loop {
            match self.read_message().await? {
                BackendMessage::Other(backend::Message::AuthenticationOk) => break,
                BackendMessage::Other(backend::Message::AuthenticationCleartextPassword) => {
                    frontend::password_message(password()?.as_bytes(), &mut self.write_buffer)?;
                    self.flush().await?;
                }
                BackendMessage::Other(backend::Message::AuthenticationMd5Password(body)) => {
                    let hash = postgres_protocol::authentication::md5_hash(
                        params.user.as_bytes(),
                        password()?.as_bytes(),
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.write_buffer)?;
                    self.flush().await?;
                }
                BackendMessage::Other(backend::Message::AuthenticationSasl(body)) => {
                    let mut mechanisms = body.mechanisms();
                    let mut offered = Vec::new();
                    while let Some(mechanism) = mechanisms.next()? {
                        offered.push(mechanism.to_owned());
                    }
                    // Over TLS, bind the SCRAM exchange to the server certificate
                    // (tls-server-end-point) when the server offers it, as libpq does.
                    let plus_offered = offered.iter().any(|m| m == SCRAM_SHA_256_PLUS);
                    let (mechanism, binding) = match (&self.tls_server_end_point, plus_offered) {
                        (Some(hash), true) => (
                            SCRAM_SHA_256_PLUS,
                            ChannelBinding::tls_server_end_point(hash.clone()),
                        ),
                        (Some(_), false) => (SCRAM_SHA_256, ChannelBinding::unrequested()),
                        (None, _) => (SCRAM_SHA_256, ChannelBinding::unsupported()),
                    };
                    if !offered.iter().any(|m| m == mechanism) {
                        return Err(SourceError::UnsupportedAuthentication {
                            method: format!("SASL {}", offered.join(", ")),
                        });
                    }
                    self.channel_bound = mechanism == SCRAM_SHA_256_PLUS;
                    self.scram_exchange(password()?, mechanism, binding, &auth_error)
                        .await?;
                }
                BackendMessage::Other(backend::Message::ErrorResponse(body)) => {
                    return Err(auth_error(server_error(&body)));
                }
                BackendMessage::Other(backend::Message::AuthenticationGss)
                | BackendMessage::Other(backend::Message::AuthenticationKerberosV5)
                | BackendMessage::Other(backend::Message::AuthenticationSspi)
                | BackendMessage::Other(backend::Message::AuthenticationScmCredential) => {
                    return Err(SourceError::UnsupportedAuthentication {
                        method: "GSSAPI/SSPI/Kerberos".into(),
                    })
                }
                _ => {
                    return Err(SourceError::Protocol(
                        "unexpected message during authentication".into(),
                    ))
                }
            }
        }
        // After AuthenticationOk: ParameterStatus, BackendKeyData, then ReadyForQuery.
        loop {
            match self.read_message().await? {
                BackendMessage::Other(backend::Message::ReadyForQuery(_)) => return Ok(()),
                BackendMessage::Other(backend::Message::BackendKeyData(body)) => {
                    self.backend_pid = Some(body.process_id());
                }
                BackendMessage::Other(backend::Message::ParameterStatus(body))
                    if body.name()? == "server_version" =>
                {
                    self.server_version = Some(body.value()?.to_owned());
                }
                BackendMessage::Other(backend::Message::ErrorResponse(body)) => {
                    return Err(auth_error(server_error(&body)));
                }
                _ => {}
            }
        }
    }

    async fn scram_exchange(
        &mut self,
        password: &str,
        mechanism: &str,
        binding: ChannelBinding,
        auth_error: &(dyn Fn(ServerError) -> SourceError + Sync),
    ) -> Result<()> {
        let mut scram = ScramSha256::new(password.as_bytes(), binding);
        frontend::sasl_initial_response(mechanism, scram.message(), &mut self.write_buffer)?;
        self.flush().await?;
        match self.read_message().await? {
            BackendMessage::Other(backend::Message::AuthenticationSaslContinue(body)) => {
                scram.update(body.data())?;
            }
            BackendMessage::Other(backend::Message::ErrorResponse(body)) => {
                return Err(auth_error(server_error(&body)))
            }
            _ => return Err(SourceError::Protocol("expected SASL continue".into())),
        }
        frontend::sasl_response(scram.message(), &mut self.write_buffer)?;
        self.flush().await?;
        match self.read_message().await? {
            BackendMessage::Other(backend::Message::AuthenticationSaslFinal(body)) => {
                scram.finish(body.data())?;
                Ok(())
            }
            BackendMessage::Other(backend::Message::ErrorResponse(body)) => {
                Err(auth_error(server_error(&body)))
            }
            _ => Err(SourceError::Protocol("expected SASL final".into())),
        }
    }

    /// Runs a replication command or SQL statement with the simple query protocol and returns
    /// the rows of its (last) result set in text form.
    pub async fn simple_query(&mut self, query: &str) -> Result<Vec<TextRow>> {
        frontend::query(query, &mut self.write_buffer)?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            match self.read_message().await? {
                BackendMessage::Other(backend::Message::RowDescription(_)) => rows.clear(),
                BackendMessage::Other(backend::Message::DataRow(body)) => {
                    let buffer = body.buffer();
                    let mut ranges = body.ranges();
                    let mut row = Vec::new();
                    while let Some(range) = ranges.next()? {
                        row.push(match range {
                            Some(range) => {
                                Some(String::from_utf8(buffer[range].to_vec()).map_err(|_| {
                                    SourceError::Protocol("non-UTF-8 result".into())
                                })?)
                            }
                            None => None,
                        });
                    }
                    rows.push(row);
                }
                BackendMessage::Other(backend::Message::ErrorResponse(body)) => {
                    error = Some(Box::new(server_error(&body)));
                }
                BackendMessage::Other(backend::Message::ReadyForQuery(_)) => break,
                BackendMessage::CopyBothResponse => {
                    return Err(SourceError::Protocol(
                        "simple_query got CopyBothResponse; use start_replication".into(),
                    ))
                }
                _ => {}
            }
        }
        match error {
            Some(server) => Err(SourceError::Server {
                context: format!("`{}` failed", first_line(query)),
                server,
            }),
            None => Ok(rows),
        }
    }

    /// Sends `START_REPLICATION …` and waits for the server to enter CopyBoth mode.
    pub async fn start_replication(&mut self, command: &str) -> Result<()> {
        frontend::query(command, &mut self.write_buffer)?;
        self.flush().await?;
        loop {
            match self.read_message().await? {
                BackendMessage::CopyBothResponse => return Ok(()),
                BackendMessage::Other(backend::Message::ErrorResponse(body)) => {
                    let server = Box::new(server_error(&body));
                    // Drain to ReadyForQuery so the connection stays usable.
                    loop {
                        if let BackendMessage::Other(backend::Message::ReadyForQuery(_)) =
                            self.read_message().await?
                        {
                            break;
                        }
                    }
                    return Err(SourceError::Server {
                        context: format!("`{}` failed", first_line(command)),
                        server,
                    });
                }
                BackendMessage::Other(backend::Message::NoticeResponse(_)) => {}
                _ => return Err(SourceError::Protocol("expected CopyBothResponse".into())),
            }
        }
    }

    /// Sends one CopyData message (a standby status update while streaming).
    pub async fn send_copy_data(&mut self, payload: &[u8]) -> Result<()> {
        self.write_buffer.extend_from_slice(b"d");
        let length = i32::try_from(payload.len() + 4)
            .map_err(|_| SourceError::Protocol("CopyData too large".into()))?;
        self.write_buffer.extend_from_slice(&length.to_be_bytes());
        self.write_buffer.extend_from_slice(payload);
        self.flush().await
    }

    /// Ends the CopyBoth stream from our side and sends Terminate.
    pub async fn close(mut self) -> Result<()> {
        frontend::copy_done(&mut self.write_buffer);
        frontend::terminate(&mut self.write_buffer);
        self.flush().await?;
        self.stream.shutdown().await.ok();
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.write_buffer).await?;
        self.write_buffer.clear();
        Ok(())
    }

    /// Reads one backend message. Cancel-safe: nothing is lost if the future is dropped.
    pub async fn read_message(&mut self) -> Result<BackendMessage> {
        loop {
            if let Some(message) = self.parse_buffered()? {
                return Ok(message);
            }
            let read = self.stream.read_buf(&mut self.read_buffer).await?;
            if read == 0 {
                return Err(SourceError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                )));
            }
        }
    }

    fn parse_buffered(&mut self) -> Result<Option<BackendMessage>> {
        if self.read_buffer.len() < 5 {
            return Ok(None);
        }
        let tag = self.read_buffer[0];
        let length = u32::from_be_bytes([
            self.read_buffer[1],
            self.read_buffer[2],
            self.read_buffer[3],
            self.read_buffer[4],
        ]) as usize;
        if !(4..=MAX_BACKEND_MESSAGE_BYTES).contains(&length) {
            return Err(SourceError::Protocol(format!(
                "invalid message length {length}"
            )));
        }
        let total = length + 1;
        if self.read_buffer.len() < total {
            self.read_buffer.reserve(total - self.read_buffer.len());
            return Ok(None);
        }
        match tag {
            b'd' => {
                let mut frame = self.read_buffer.split_to(total);
                frame.advance(5);
                Ok(Some(BackendMessage::CopyData(frame.freeze())))
            }
            b'W' => {
                self.read_buffer.advance(total);
                Ok(Some(BackendMessage::CopyBothResponse))
            }
            b'c' => {
                self.read_buffer.advance(total);
                Ok(Some(BackendMessage::CopyDone))
            }
            _ => match backend::Message::parse(&mut self.read_buffer)? {
                Some(message) => Ok(Some(BackendMessage::Other(message))),
                None => Ok(None),
            },
        }
    }
}

pub(crate) fn server_error(body: &backend::ErrorResponseBody) -> ServerError {
    let mut error = ServerError::default();
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'V' => error.severity = value,
            b'S' if error.severity.is_empty() => error.severity = value,
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            b'H' => error.hint = Some(value),
            _ => {}
        }
    }
    error
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Turns on TCP keepalives with pgseam's timing.
fn set_keepalive(stream: &TcpStream) -> Result<()> {
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    Ok(())
}

/// Opens an ordinary (non-replication) session with tokio-postgres, the same session
/// parameters and the same TLS settings as the replication connection.
pub async fn connect_query_session(params: &ConnectParams) -> Result<tokio_postgres::Client> {
    let (tls, verify_failure) = params.tls.make_tls_connect()?;
    let attempts = params.tls.mode.attempts();
    let mut attempt_index = 0;
    let (client, connection) = loop {
        let attempt = attempts[attempt_index];
        let mut config = params.tokio_postgres_config();
        config.ssl_mode(match attempt {
            Attempt::Plain => tokio_postgres::config::SslMode::Disable,
            Attempt::TlsIfOffered => tokio_postgres::config::SslMode::Prefer,
            Attempt::Tls => tokio_postgres::config::SslMode::Require,
        });
        match config.connect(tls.clone()).await {
            Ok(pair) => break pair,
            Err(source) => {
                let err = query_session_error(params, source, verify_failure.take());
                if attempt_index + 1 < attempts.len() && err.is_hba_rejection() {
                    attempt_index += 1;
                    continue;
                }
                return Err(err);
            }
        }
    };
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "query session ended");
        }
    });
    Ok(client)
}

fn query_session_error(
    params: &ConnectParams,
    source: tokio_postgres::Error,
    verify_failure: Option<String>,
) -> SourceError {
    if let Some(db) = source.as_db_error() {
        if db.code().code().starts_with("28") {
            return SourceError::Authentication {
                user: params.user.clone(),
                server: Box::new(crate::error::ServerError {
                    severity: db.severity().to_owned(),
                    code: db.code().code().to_owned(),
                    message: db.message().to_owned(),
                    detail: db.detail().map(str::to_owned),
                    hint: db.hint().map(str::to_owned),
                }),
            };
        }
        return SourceError::Query {
            context: format!("cannot connect to {}", params.address()),
            error: source,
        };
    }
    let text = describe_chain(&source);
    if let Some(reason) = verify_failure {
        return SourceError::Tls {
            address: params.address(),
            message: format!(
                "the server certificate is not accepted ({reason}; database.sslmode={})",
                params.tls.mode.as_str()
            ),
        };
    }
    if text.contains("server does not support TLS") {
        return SourceError::Tls {
            address: params.address(),
            message: format!(
                "the server does not accept TLS connections (ssl = off), but database.sslmode={} \
                 requires TLS",
                params.tls.mode.as_str()
            ),
        };
    }
    if has_openssl_error(&source) {
        return SourceError::Tls {
            address: params.address(),
            message: text,
        };
    }
    if text.contains("password missing") {
        return SourceError::PasswordRequired {
            user: params.user.clone(),
        };
    }
    SourceError::Connect {
        address: params.address(),
        source: std::io::Error::other(text),
    }
}

fn has_openssl_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<openssl::ssl::Error>() || e.is::<openssl::error::ErrorStack>() {
            return true;
        }
        current = e.source();
    }
    false
}

fn describe_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        text.push_str(": ");
        text.push_str(&e.to_string());
        current = e.source();
    }
    text
}
