//! How results are printed: aligned tables (`-o table|wide`), JSON and YAML documents, colour only
//! on a terminal and never with `NO_COLOR`, progress lines only on a terminal.

use std::io::{IsTerminal as _, Write as _};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Error, Result};

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// Aligned columns with more of them.
    Wide,
    /// The API's objects as a JSON document.
    Json,
    /// The API's objects as YAML.
    Yaml,
}

/// Colours for one stream: on only when it is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// For standard output.
    pub fn stdout() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && no_color_unset(),
        }
    }

    /// Never coloured (for tests and files).
    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Good news.
    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Bad news.
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Worth a look.
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }

    /// Headings.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Hints.
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// ✓ in green.
    pub fn ok_mark(&self) -> String {
        self.green("✓")
    }

    /// ✗ in red.
    pub fn fail_mark(&self) -> String {
        self.red("✗")
    }

    /// Colours a state word by what it means.
    pub fn state(&self, word: &str) -> String {
        match crate::ops::normalize(word).as_str() {
            "healthy" | "mirrored" | "synced" | "running" | "federated" | "member" | "alive"
            | "applied" | "unchanged" | "yes" | "exported" | "imported" | "true" => {
                self.green(word)
            }
            "down" | "error" | "failed" | "conflict" | "dead" | "rejected" | "pruneheld"
            | "invalid" => self.red(word),
            "-" | "unknown" => word.to_string(),
            _ => self.yellow(word),
        }
    }
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A table: headers and rows of cells that may carry colour codes (widths count visible
/// characters only).
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: AsRef<str>>(headers: &[S]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.as_ref().to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are blank).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rendered with three spaces between columns, as kubectl does; no trailing spaces.
    pub fn render(&self) -> String {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| visible_width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(visible_width(cell));
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                text.push_str(cell);
                if i + 1 < cols {
                    text.push_str(&" ".repeat(width - visible_width(cell) + 3));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.headers, &mut out);
        for row in &self.rows {
            line(row, &mut out);
        }
        out
    }
}

/// Characters a terminal shows (ANSI colour sequences excluded).
pub fn visible_width(s: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}

/// Writes `text` to standard output; a closed pipe (`| head`) ends quietly.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Output(e.to_string())),
    }
}

/// A value as a JSON or YAML document.
pub fn document<T: Serialize>(value: &T, format: Format) -> Result<String> {
    match format {
        Format::Yaml => serde_saphyr::to_string(value).map_err(|e| Error::Output(e.to_string())),
        _ => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| Error::Output(e.to_string())),
    }
}

/// `5s`, `3m`, `2h`, `4d` since an RFC 3339 time; `-` when absent or unparsable.
pub fn age(since: Option<&str>) -> String {
    let Some(t) = since.and_then(|s| DateTime::parse_from_rfc3339(s).ok()) else {
        return "-".into();
    };
    let secs = (Utc::now() - t.with_timezone(&Utc)).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// The first 7 characters of a commit id, `-` when absent.
pub fn short_rev(rev: Option<&str>) -> String {
    match rev {
        Some(r) if !r.is_empty() => r.chars().take(7).collect(),
        _ => "-".into(),
    }
}

/// `-` for an empty cell.
pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// A single line of progress on standard error, rewritten in place; silent unless standard
/// error is a terminal.
#[derive(Debug)]
pub struct Progress {
    on: bool,
    ticks: usize,
    shown: bool,
}

impl Progress {
    /// Progress for the current process.
    pub fn new() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            ticks: 0,
            shown: false,
        }
    }

    /// Replaces the line with `text` and a spinner.
    pub fn update(&mut self, text: &str) {
        if !self.on {
            return;
        }
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let frame = FRAMES[self.ticks % FRAMES.len()];
        self.ticks += 1;
        eprint!("\r\x1b[2K{frame} {text}");
        self.shown = true;
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.on && self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_visible_width() {
        let mut t = Table::new(&["NAME", "STATE"]);
        t.row(vec!["east".into(), "\x1b[32mHealthy\x1b[0m".into()]);
        t.row(vec!["north-long".into(), "Down".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME         STATE");
        assert_eq!(lines[1], "east         \x1b[32mHealthy\x1b[0m");
        assert_eq!(lines[2], "north-long   Down");
    }

    #[test]
    fn plain_style_has_no_escape_codes() {
        assert_eq!(Style::plain().red("x"), "x");
        assert_eq!(Style::plain().ok_mark(), "✓");
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(None), "-");
        let t = (Utc::now() - chrono::Duration::seconds(125)).to_rfc3339();
        assert_eq!(age(Some(&t)), "2m");
    }
}
