//! Writes a deterministic layer from a directory and prints its digests.
//!
//! ```text
//! cargo run --release -p pluginctl-rootfs --example mklayer -- DIR OUT [gzip|zstd|none]
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use pluginctl_rootfs::layer::{Compression, write_layer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ([dir, out] | [dir, out, _]) = args.as_slice() else {
        eprintln!("usage: mklayer DIR OUT [gzip|zstd|none]");
        std::process::exit(2);
    };
    let compression = match args.get(2).map(String::as_str) {
        None | Some("gzip") => Compression::GZIP,
        Some("zstd") => Compression::ZSTD,
        Some("none") => Compression::None,
        Some(other) => {
            eprintln!("mklayer: unknown compression {other:?}");
            std::process::exit(2);
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let result = File::create(out)
        .map_err(|e| format!("creating {out}: {e}"))
        .and_then(|f| {
            write_layer(
                Path::new(dir),
                BufWriter::with_capacity(1 << 20, f),
                compression,
                threads,
            )
            .map_err(|e| e.to_string())
        });
    match result {
        Ok(info) => println!("{} {} {}", info.digest, info.diff_id, info.size),
        Err(e) => {
            eprintln!("mklayer: {e}");
            std::process::exit(1);
        }
    }
}
