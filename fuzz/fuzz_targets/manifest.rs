//! Manifests, indexes and plugin configs: parsing never panics, and what
//! parses serialises back to something that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pluginctl_oci::{Document, PluginConfig};

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = Document::parse(None, data) {
        let bytes = pluginctl_oci::json::to_vec(&doc);
        assert_eq!(Document::parse(None, &bytes).unwrap(), doc);
    }
    if let Ok(c) = PluginConfig::from_slice(data) {
        assert_eq!(PluginConfig::from_slice(&c.to_vec()).unwrap(), c);
    }
});
