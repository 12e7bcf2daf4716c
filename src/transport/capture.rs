//! A command's output as it streams in: complete lines go to the sink at once, and a bounded
//! tail is kept for the script and the report, so a host that prints gigabytes costs neither
//! quadratic time nor unbounded memory.

use super::{LineSink, Stream};

/// The most output of one stream kept for the script; older bytes are dropped.
pub const KEPT_BYTES: usize = 16 * 1024 * 1024;
/// A line longer than this is shown in pieces of this size.
const LONGEST_LINE: usize = 64 * 1024;

/// One stream of one command.
pub struct Capture {
    stream: Stream,
    /// Bytes of the line being received.
    pending: Vec<u8>,
    /// The tail of everything received.
    kept: Vec<u8>,
    /// How many bytes were dropped from the front of `kept`.
    dropped: u64,
}

impl Capture {
    /// An empty capture of `stream`.
    pub fn new(stream: Stream) -> Self {
        Capture {
            stream,
            pending: Vec::new(),
            kept: Vec::new(),
            dropped: 0,
        }
    }

    /// Takes a chunk: shows each line it completes, keeps the tail.
    pub fn push(&mut self, data: &[u8], sink: &dyn LineSink) {
        self.kept.extend_from_slice(data);
        // Trimmed in bulk, so dropping costs amortised constant time per byte.
        if self.kept.len() > 2 * KEPT_BYTES {
            let excess = self.kept.len() - KEPT_BYTES;
            self.kept.drain(..excess);
            self.dropped += excess as u64;
        }
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&rest[..pos]);
            self.flush(sink);
            rest = &rest[pos + 1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= LONGEST_LINE {
            let piece: Vec<u8> = self.pending.drain(..LONGEST_LINE).collect();
            sink.line(self.stream, &String::from_utf8_lossy(&piece));
        }
    }

    fn flush(&mut self, sink: &dyn LineSink) {
        sink.line(self.stream, &String::from_utf8_lossy(&self.pending));
        self.pending.clear();
    }

    /// Shows the last line if it had no newline, and returns what was kept.
    pub fn finish(mut self, sink: &dyn LineSink) -> String {
        if !self.pending.is_empty() {
            self.flush(sink);
        }
        if self.kept.len() > KEPT_BYTES {
            let excess = self.kept.len() - KEPT_BYTES;
            self.kept.drain(..excess);
            self.dropped += excess as u64;
        }
        let kept = String::from_utf8_lossy(&self.kept);
        if self.dropped == 0 {
            return kept.into_owned();
        }
        format!(
            "[weft: the first {} bytes of this output were dropped; the last {} are kept]\n{kept}",
            self.dropped,
            self.kept.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Collect(Mutex<Vec<String>>);

    impl LineSink for Collect {
        fn line(&self, _: Stream, line: &str) {
            self.0.lock().expect("lines").push(line.to_string());
        }
    }

    #[test]
    fn lines_split_across_chunks_arrive_whole_and_long_output_keeps_its_tail() {
        let sink = Collect(Mutex::new(Vec::new()));
        let mut capture = Capture::new(Stream::Stdout);
        capture.push(b"one\ntw", &sink);
        capture.push(b"o\nthree", &sink);
        assert_eq!(capture.finish(&sink), "one\ntwo\nthree");
        assert_eq!(*sink.0.lock().expect("lines"), ["one", "two", "three"]);

        let sink = Collect(Mutex::new(Vec::new()));
        let mut capture = Capture::new(Stream::Stdout);
        let chunk = vec![b'z'; 1024 * 1024];
        for _ in 0..40 {
            capture.push(&chunk, &sink);
        }
        let kept = capture.finish(&sink);
        assert!(kept.starts_with("[weft: the first"));
        assert!(kept.len() < KEPT_BYTES + 200);
        // Shown in pieces, never one 40 MiB line.
        let lines = sink.0.lock().expect("lines");
        assert!(lines.iter().all(|l| l.len() <= LONGEST_LINE));
        assert_eq!(
            lines.iter().map(String::len).sum::<usize>(),
            40 * 1024 * 1024
        );
    }
}
