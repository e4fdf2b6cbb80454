//! Progress bars on stderr (indicatif) for the commands that walk a whole ledger or export:
//! `export`, `verify`, `prove`, `report`. Drawn only when stderr is a terminal and the work is
//! large; otherwise nothing at all is written, so logs and pipes stay clean.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Events below which a walk ends before a bar could say anything useful.
pub const PROGRESS_EVENTS_MIN: u64 = 20_000;

/// Bytes of an export below which reading it is as quick (about 20,000 events of 1 KB).
pub const PROGRESS_BYTES_MIN: u64 = 20 * 1024 * 1024;

/// One bar; cleared from the terminal when dropped.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `what` over `total` units (`None`: a counter without an end), shown when
    /// stderr is a terminal and `large` says the work is worth one.
    pub fn new(what: &str, total: Option<u64>, unit: &str, large: bool) -> Progress {
        let shown = large && std::io::stderr().is_terminal();
        let bar = match total {
            Some(total) => ProgressBar::new(total),
            None => ProgressBar::no_length(),
        };
        if !shown {
            bar.set_draw_target(ProgressDrawTarget::hidden());
            return Progress { bar };
        }
        let template = match total {
            Some(_) => {
                format!("{what} [{{bar:40}}] {{human_pos}}/{{human_len}} {unit} ({{eta}} left)")
            }
            None => format!("{what} {{human_pos}} {unit} ({{elapsed}})"),
        };
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar }
    }

    /// `done` units so far.
    pub fn set(&self, done: u64) {
        self.bar.set_position(done);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A writer that moves a progress bar by the lines written through it (an export's events).
pub struct LineCounting<'a, W: Write> {
    pub inner: W,
    progress: &'a Progress,
    lines: u64,
}

impl<'a, W: Write> LineCounting<'a, W> {
    pub fn new(inner: W, progress: &'a Progress) -> Self {
        LineCounting {
            inner,
            progress,
            lines: 0,
        }
    }
}

impl<W: Write> Write for LineCounting<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        let before = self.lines;
        self.lines += bytes[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        if before / 4096 != self.lines / 4096 {
            self.progress.set(self.lines);
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
