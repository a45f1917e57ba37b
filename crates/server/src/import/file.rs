//! `shiplog import file PATH|-`: an NDJSON file (or standard input) as it is, one record per
//! line, in chunks; refusals are reported by the file's line numbers.

use std::io::BufRead;

use super::Sender;

/// Sends every line of `path` (`-`: standard input).
pub async fn import(path: &str, sender: &mut Sender) -> Result<(), String> {
    let reader: Box<dyn BufRead> = if path == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, file))
    };
    for line in reader.lines() {
        let line = line.map_err(|e| format!("{path}: {e}"))?;
        // Blank lines are sent too, so the server's line numbers are the file's.
        sender.push_line(line.trim_end_matches('\r')).await?;
    }
    sender.flush().await
}

/// How many lines `path` has (for the progress bar); `None` for standard input.
pub fn count_lines(path: &str) -> Option<u64> {
    if path == "-" {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut count = 0u64;
    loop {
        let buffer = reader.fill_buf().ok()?;
        if buffer.is_empty() {
            return Some(count);
        }
        count += buffer.iter().filter(|b| **b == b'\n').count() as u64;
        let consumed = buffer.len();
        reader.consume(consumed);
    }
}
