//! `--jsonl PATH`: every delivered event as one JSON object per line (`-` for stdout).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::sink::json::JsonEvent;
use crate::sink::{EventBatch, Sink, SinkError};

/// Writes JSON Lines to a file (appending) or stdout.
pub struct JsonlSink {
    out: BufWriter<Box<dyn Write + Send>>,
    host: String,
}

impl JsonlSink {
    /// Opens `target` (`-` = stdout) for appending.
    pub fn open(target: &str, host: String) -> std::io::Result<Self> {
        let out: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            let path = Path::new(target);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            Box::new(OpenOptions::new().create(true).append(true).open(path)?)
        };
        Ok(JsonlSink {
            out: BufWriter::with_capacity(256 * 1024, out),
            host,
        })
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn write(&mut self, batch: &EventBatch) -> Result<(), SinkError> {
        let io = |source| SinkError::Io {
            sink: "jsonl",
            source,
        };
        for event in batch.iter() {
            serde_json::to_writer(
                &mut self.out,
                &JsonEvent {
                    event,
                    host: &self.host,
                },
            )
            .map_err(|e| io(e.into()))?;
            self.out.write_all(b"\n").map_err(io)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|source| SinkError::Io {
            sink: "jsonl",
            source,
        })
    }
}
