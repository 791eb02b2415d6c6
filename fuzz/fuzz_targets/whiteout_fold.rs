//! Any bytes, cut into up to three layers at 0xFF 0xFF markers, through
//! flatten's model (whiteouts, opaque directories, symlinks, hardlinks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pluginctl_rootfs::flatten::{self, flatten};

fuzz_target!(|data: &[u8]| {
    let layers: Vec<&[u8]> = data.split(|&b| b == 0xff).take(3).collect();
    let _ = flatten(&layers[..], std::io::sink(), &flatten::Options::default());
});
