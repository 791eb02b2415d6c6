//! Progress for long operations: a bar per blob on a terminal (bytes,
//! speed, ETA), one line per step otherwise; all on stderr.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pluginctl_manager::oci::Digest;
use pluginctl_manager::registry::{Client, Event};

/// The client, reporting its transfers on stderr.
pub(crate) fn attach(client: &Client) -> Client {
    if std::io::stderr().is_terminal() {
        let bars = Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        };
        client.with_progress(move |e| bars.event(e))
    } else {
        client.with_progress(lines)
    }
}

/// A byte counter for a layer being written: drawn on a terminal, hidden
/// otherwise (the caller prints one line when it is done).
pub(crate) fn layer_bar(name: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{prefix}: layer {bytes} written, {bytes_per_sec} {spinner}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(name.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

fn short(d: &Digest) -> &str {
    &d.encoded()[..12.min(d.encoded().len())]
}

/// One line per step, for logs and pipes.
fn lines(e: &Event) {
    match e {
        Event::Started {
            digest,
            size,
            offset,
        } if *offset > 0 => {
            eprintln!("{}: resuming at {offset} of {size} bytes", short(digest));
        }
        Event::Started { digest, size, .. } => eprintln!("{}: {size} bytes", short(digest)),
        Event::Done { digest } => eprintln!("{}: done", short(digest)),
        Event::Exists { digest } => eprintln!("{}: already there", short(digest)),
        Event::Mounted { digest, from } => eprintln!("{}: mounted from {from}", short(digest)),
        Event::Retried {
            what,
            attempt,
            reason,
            delay,
        } => eprintln!("{what}: retry {attempt} in {delay:?}: {reason}"),
        Event::Served { what, host } => eprintln!("{what}: served by the mirror {host}"),
        _ => {}
    }
}

struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
}

impl Bars {
    fn event(&self, e: &Event) {
        let mut bars = self
            .bars
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match e {
            Event::Started {
                digest,
                size,
                offset,
            } => {
                let bar = self.multi.add(ProgressBar::new(*size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(short(digest).to_owned());
                bar.set_position(*offset);
                bars.insert(digest.clone(), bar);
            }
            Event::Bytes { digest, done, .. } => {
                if let Some(b) = bars.get(digest) {
                    b.set_position(*done);
                }
            }
            Event::Done { digest } => {
                if let Some(b) = bars.remove(digest) {
                    b.finish_with_message("done");
                }
            }
            Event::Exists { digest } => {
                let _ = self
                    .multi
                    .println(format!("{}: already there", short(digest)));
            }
            Event::Mounted { digest, from } => {
                let _ = self
                    .multi
                    .println(format!("{}: mounted from {from}", short(digest)));
            }
            Event::Retried {
                what,
                attempt,
                reason,
                ..
            } => {
                let _ = self
                    .multi
                    .println(format!("{what}: retry {attempt}: {reason}"));
            }
            Event::Served { what, host } => {
                let _ = self
                    .multi
                    .println(format!("{what}: served by the mirror {host}"));
            }
            _ => {}
        }
    }
}
