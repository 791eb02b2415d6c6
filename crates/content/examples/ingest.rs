//! Ingests a file (or a buffer repeated in memory) into a content store and
//! prints the digest: the store on its own, and what `cargo xtask bench
//! content` measures.
//!
//! ```text
//! cargo run --release -p pluginctl-content --example ingest -- STORE FILE
//! cargo run --release -p pluginctl-content --example ingest -- STORE --memory FILE
//! ```
//! With `--memory`, the first MiB of FILE is read once and written again and
//! again until FILE's length is reached: ingest from memory, no file reads.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use pluginctl_content::Store;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (store, memory, file) = match args.as_slice() {
        [store, file] => (store, false, file),
        [store, flag, file] if flag == "--memory" => (store, true, file),
        _ => {
            eprintln!("usage: ingest STORE [--memory] FILE");
            return ExitCode::from(2);
        }
    };
    match ingest(Path::new(store), memory, Path::new(file)) {
        Ok(digest) => {
            println!("{digest}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ingest: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ingest(store: &Path, memory: bool, file: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let store = Store::open(store)?;
    let mut input = File::open(file).map_err(|e| format!("opening {}: {e}", file.display()))?;
    let size = input.metadata()?.len();
    let mut w = store.writer(&format!("ingest {}", file.display()))?;
    w.truncate(0)?;
    if memory {
        let mut block = vec![0u8; 1 << 20];
        input.read_exact(&mut block)?;
        let mut left = size;
        while left > 0 {
            let n = usize::try_from(left.min(block.len() as u64))?;
            w.write_all(&block[..n])?;
            left -= n as u64;
        }
    } else {
        w.ingest_from(&mut input)?;
    }
    Ok(w.commit(Some(size), None)?.to_string())
}
