//! Reading on another thread, so that decompression (or the disk) and the
//! consumer run on two cores at once.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

/// Bytes per buffer handed between the threads.
const CHUNK: usize = 1 << 20;
/// Buffers in flight: with the one being read, memory stays at 3 MiB.
const DEPTH: usize = 2;

/// The consumer's side of a reader running on a scoped thread.
pub struct ReadAhead {
    rx: Receiver<io::Result<Vec<u8>>>,
    give_back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

/// Starts reading `inner` on a thread of `scope`.
pub fn read_ahead<'scope, R: Read + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    mut inner: R,
) -> ReadAhead {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
    let (give_back, recycled) = sync_channel::<Vec<u8>>(DEPTH + 2);
    scope.spawn(move || {
        // Small streams stay cheap: buffers start at 64 KiB and double.
        let mut size = 64 << 10;
        loop {
            let mut buf = recycled.try_recv().unwrap_or_default();
            buf.resize(size, 0);
            size = (size * 2).min(CHUNK);
            let mut n = 0;
            let result = loop {
                match inner.read(&mut buf[n..]) {
                    Ok(0) => break Ok(()),
                    Ok(k) => {
                        n += k;
                        if n == buf.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            buf.truncate(n);
            // Data first (never an empty buffer: that means the end), then
            // the end or the error, which must not be mistaken for the end.
            if n > 0 && tx.send(Ok(buf)).is_err() {
                return; // the consumer stopped
            }
            match result {
                Ok(()) if n == 0 => {
                    let _ = tx.send(Ok(Vec::new()));
                    return;
                }
                Ok(()) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    ReadAhead {
        rx,
        give_back,
        cur: Vec::new(),
        pos: 0,
        done: false,
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            let next = self
                .rx
                .recv()
                .map_err(|_| io::Error::other("the read-ahead thread stopped"))??;
            if next.is_empty() {
                self.done = true;
                return Ok(0);
            }
            let old = std::mem::replace(&mut self.cur, next);
            let _ = self.give_back.try_send(old);
            self.pos = 0;
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn passes_everything_through_in_order_and_reports_errors() {
        let data: Vec<u8> = (0..5 * CHUNK + 77)
            .map(|i| (i % 251).to_le_bytes()[0])
            .collect();
        std::thread::scope(|s| {
            let mut r = read_ahead(s, &data[..]);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        });
        // An error right at a buffer boundary is still an error.
        std::thread::scope(|s| {
            let mut r = read_ahead(s, Failing(64 << 10));
            let err = r.read_to_end(&mut Vec::new()).unwrap_err();
            assert_eq!(err.to_string(), "disk on fire");
        });
        std::thread::scope(|s| {
            let mut r = read_ahead(s, Failing(3000));
            let mut out = Vec::new();
            let err = r.read_to_end(&mut out).unwrap_err();
            assert_eq!(err.to_string(), "disk on fire");
            assert_eq!(out.len(), 3000);
        });
        // A consumer that stops early does not hang the scope.
        std::thread::scope(|s| {
            let mut r = read_ahead(s, &data[..]);
            let mut first = [0u8; 10];
            r.read_exact(&mut first).unwrap();
            drop(r);
        });
    }
}
