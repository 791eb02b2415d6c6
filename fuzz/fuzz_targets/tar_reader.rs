//! Any bytes through the tar reader (behind decompression): errors are
//! fine, panics and unbounded memory are not.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use pluginctl_rootfs::decompress::{self, decompress};
use pluginctl_rootfs::tar::{Limits, Reader};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_entries: 1000, max_path: 4096, max_extension: 1 << 16, max_bytes: 64 << 20 };
    let dl = decompress::Limits { max_bytes: 64 << 20, ..decompress::Limits::default() };
    let Ok(input) = decompress(data, &dl) else { return };
    let mut r = Reader::new(input, limits);
    while let Ok(Some(_)) = r.next_header() {
        let _ = std::io::copy(&mut r.data().take(1 << 20), &mut std::io::sink());
    }
});
