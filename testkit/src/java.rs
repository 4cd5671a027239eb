//! The Java side of comparison tests: small programs compiled here against the reference
//! Debezium harness's jars (`$DBZPEER_HOME/libs`, default `.dbzpeer/libs` in the repository,
//! set up by `scripts/dev-env.sh install`), so that a test can ask Kafka's or Connect's own code
//! what it makes of pgseam's bytes.
//!
//! A test that needs Java and finds no `javac` or no jar fails with a message naming what is
//! missing, unless `PGSEAM_SKIP_JAVA_TESTS=1`, when [`JavaHarness::find`] says so on stderr and
//! returns `None` so the test can skip its Java step.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that turns a missing Java setup from a failure into a skip.
pub const SKIP_JAVA_ENV: &str = "PGSEAM_SKIP_JAVA_TESTS";

/// The harness's jar directory, checked for `javac` and one jar the test needs.
#[derive(Debug, Clone)]
pub struct JavaHarness {
    libs: PathBuf,
}

/// A compiled program: its classes directory on the classpath before the harness's jars.
#[derive(Debug, Clone)]
pub struct JavaProgram {
    classpath: String,
    main_class: String,
}

impl JavaHarness {
    /// Finds the jars and `javac`. `required_jar` is a file name in `libs/` the test needs
    /// (e.g. `kafka-clients-4.3.0.jar`).
    ///
    /// # Panics
    /// When `javac` or the jar is missing and `PGSEAM_SKIP_JAVA_TESTS` is not `1`.
    pub fn find(required_jar: &str) -> Option<Self> {
        let home = std::env::var("DBZPEER_HOME")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.dbzpeer").into());
        let libs = Path::new(&home).join("libs");
        let has_jar = libs.join(required_jar).exists();
        let has_javac = Command::new("javac").arg("-version").output().is_ok();
        if has_jar && has_javac {
            return Some(Self { libs });
        }
        let missing = if has_javac {
            format!("{required_jar} in {}", libs.display())
        } else {
            "javac".to_owned()
        };
        if std::env::var(SKIP_JAVA_ENV).as_deref() == Ok("1") {
            eprintln!("skipping the Java step: no {missing}");
            return None;
        }
        panic!(
            "this test needs javac and the Debezium harness jars (missing: {missing}); \
             run scripts/dev-env.sh install, or set {SKIP_JAVA_ENV}=1 to skip"
        );
    }

    /// Compiles `source` (one `.java` file whose class is `main_class`) into `classes`.
    ///
    /// # Panics
    /// When `javac` cannot run or reports an error (its stderr is in the message).
    pub fn compile(&self, source: &Path, classes: &Path, main_class: &str) -> JavaProgram {
        let jars = format!("{}/*", self.libs.display());
        let javac = Command::new("javac")
            .args(["--release", "17", "-d"])
            .arg(classes)
            .args(["-cp", &jars])
            .arg(source)
            .output()
            .expect("run javac");
        assert!(
            javac.status.success(),
            "javac {}: {}",
            source.display(),
            String::from_utf8_lossy(&javac.stderr)
        );
        JavaProgram {
            classpath: format!("{}:{jars}", classes.display()),
            main_class: main_class.to_owned(),
        }
    }
}

impl JavaProgram {
    /// A `java` command running the program; add arguments and stdio as needed.
    pub fn command(&self) -> Command {
        let mut java = Command::new("java");
        java.args(["-cp", &self.classpath, &self.main_class]);
        java
    }

    /// Runs the program with `args` and returns its stdout.
    ///
    /// # Panics
    /// When it cannot start or exits with an error (its stderr is in the message).
    pub fn run<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self.command().args(args).output().expect("run java");
        assert!(
            output.status.success(),
            "java {}: {}",
            self.main_class,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("java printed UTF-8")
    }
}
