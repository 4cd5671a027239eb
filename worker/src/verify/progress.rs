//! verify's progress: one line on stderr redrawn in place when stderr is a terminal
//! (`--progress auto`, the default) or always (`--progress always`); otherwise a structured log
//! line every [`LOG_INTERVAL`].

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the terminal line is redrawn at most.
const DRAW_INTERVAL: Duration = Duration::from_millis(200);
/// How often progress is logged when there is no terminal line.
pub(super) const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// When the progress line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// When stderr is a terminal.
    Auto,
    /// Always (also into a pipe or file: each update is a `\r`-separated line).
    Always,
    /// Never: progress goes to the log every 5 seconds.
    Never,
}

/// One phase's progress reporter.
pub(super) struct Progress {
    draw: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    pub(super) fn new(mode: ProgressMode) -> Progress {
        let draw = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Always => true,
            ProgressMode::Never => false,
        };
        Progress {
            draw,
            last: None,
            drawn: false,
        }
    }

    /// Reports progress: redraws the line, or logs it (through `log`) every [`LOG_INTERVAL`].
    pub(super) fn update(&mut self, line: impl FnOnce() -> String, log: impl FnOnce()) {
        let interval = if self.draw {
            DRAW_INTERVAL
        } else {
            LOG_INTERVAL
        };
        let now = Instant::now();
        match self.last {
            None => {
                // The first update starts the clock: nothing to say yet.
                self.last = Some(now);
                return;
            }
            Some(last) if now.duration_since(last) < interval => return,
            Some(_) => self.last = Some(now),
        }
        if self.draw {
            let mut err = std::io::stderr().lock();
            // Carriage return, erase the line, the new text.
            let _ = write!(err, "\r\x1b[2K{}", line());
            let _ = err.flush();
            self.drawn = true;
        } else {
            log();
        }
    }

    /// Ends the phase: the last line stays, followed by a newline.
    pub(super) fn finish(&mut self, line: impl FnOnce() -> String) {
        if self.draw {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "\r\x1b[2K{}", line());
            self.drawn = false;
        }
        self.last = None;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}
