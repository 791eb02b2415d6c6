//! References: parsing never panics, and what parses prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pluginctl_oci::Reference;

fuzz_target!(|s: &str| {
    if let Ok(r) = Reference::parse_normalized(s) {
        assert_eq!(Reference::parse_normalized(&r.to_string()).unwrap(), r);
        assert_eq!(Reference::parse_normalized(&r.familiar()).unwrap(), r);
    }
});
