//! Shared helpers of the registry integration tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pluginctl_oci::{Descriptor, Digest, Digester, Reference};
use pluginctl_registry::{
    BlobSinks, BlobSource, BytesSource, Client, ClientBuilder, Event, RetryPolicy,
};
use pluginctl_testkit::image::Image;

/// Blobs kept in memory; `committed` only holds verified ones.
#[derive(Default)]
pub struct MemSinks {
    pub committed: Mutex<HashMap<Digest, Vec<u8>>>,
    pub opened: Mutex<Vec<Digest>>,
}

impl BlobSinks for MemSinks {
    type Sink = Vec<u8>;

    async fn open(&self, desc: &Descriptor) -> io::Result<Option<(Vec<u8>, Option<Digester>)>> {
        self.opened.lock().unwrap().push(desc.digest.clone());
        if self.committed.lock().unwrap().contains_key(&desc.digest) {
            return Ok(None);
        }
        Ok(Some((Vec::new(), None)))
    }

    async fn commit(&self, desc: &Descriptor, sink: Vec<u8>) -> io::Result<()> {
        self.committed
            .lock()
            .unwrap()
            .insert(desc.digest.clone(), sink);
        Ok(())
    }
}

/// A retry policy that keeps tests fast.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(3),
    }
}

pub fn builder() -> ClientBuilder {
    Client::builder().retry(quick_retry())
}

/// A client that records its progress events.
pub fn recording(client: &Client) -> (Client, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = Arc::clone(&events);
    (
        client.with_progress(move |e| e2.lock().unwrap().push(e.clone())),
        events,
    )
}

pub fn reference(host: &str, repo: &str, tag: &str) -> Reference {
    Reference::parse(&format!("{host}/{repo}:{tag}")).unwrap()
}

pub fn sources(image: &Image) -> Vec<(Descriptor, Arc<dyn BlobSource>)> {
    image
        .blobs()
        .into_iter()
        .map(|(d, b)| (d, Arc::new(BytesSource(b.into())) as Arc<dyn BlobSource>))
        .collect()
}

pub async fn push(client: &Client, r: &Reference, image: &Image) -> Digest {
    client
        .push(r, &image.media_type, &image.manifest, &sources(image), None)
        .await
        .unwrap()
}

/// Pulls `r` into memory and checks every blob equals `image`'s.
pub async fn pull_and_check(client: &Client, r: &Reference, image: &Image) {
    let sinks = Arc::new(MemSinks::default());
    let resolved = client.pull(r, None, Arc::clone(&sinks)).await.unwrap();
    assert_eq!(resolved.bytes, image.manifest, "manifest bytes of {r}");
    assert_eq!(resolved.descriptor.digest, image.digest());
    let got = sinks.committed.lock().unwrap();
    for (d, bytes) in image.blobs() {
        assert_eq!(got.get(&d.digest), Some(&bytes), "blob {}", d.digest);
    }
}

pub fn count(events: &Mutex<Vec<Event>>, f: impl Fn(&Event) -> bool) -> usize {
    events.lock().unwrap().iter().filter(|e| f(e)).count()
}
