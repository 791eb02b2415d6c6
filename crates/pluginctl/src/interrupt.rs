//! Ctrl-C, SIGTERM and SIGHUP.
//!
//! A command that can stop cleanly by itself (`create`, `enable`) calls
//! [`cooperate`]: a signal then raises the flag the library polls
//! ([`flag`]), and the command unwinds through its ordinary error path,
//! removing what it wrote. Every other command exits at once, as it would
//! without a handler, after removing the temporary paths it registered
//! with [`remove_on_interrupt`]; what it leaves half done in a plugin root
//! is rolled back by the next command, as after a kill. A second signal, or
//! a cooperative command that has not ended within [`GRACE`], exits the
//! same way.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How long a cooperative command has to unwind after a signal.
const GRACE: Duration = Duration::from_secs(10);

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static COOPERATIVE: AtomicBool = AtomicBool::new(false);
static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The flag a signal raises.
pub(crate) fn flag() -> Arc<AtomicBool> {
    Arc::clone(FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))))
}

/// Whether a signal arrived.
pub(crate) fn interrupted() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The exit code for the signal that arrived: 128 + its number.
pub(crate) fn exit_code() -> u8 {
    u8::try_from(128 + SIGNAL.load(Ordering::SeqCst)).unwrap_or(130)
}

/// This command stops cleanly when [`flag`] is raised.
pub(crate) fn cooperate() {
    COOPERATIVE.store(true, Ordering::SeqCst);
}

/// Removes `path` (a file or a tree) if the process is ended by a signal,
/// until the guard is dropped.
pub(crate) fn remove_on_interrupt(path: &Path) -> Registered {
    lock_paths().push(path.to_owned());
    Registered(path.to_owned())
}

/// Keeps a path registered for removal on a signal; dropping it forgets
/// the path (it was renamed into place, or removed).
#[derive(Debug)]
pub(crate) struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut paths = lock_paths();
        if let Some(i) = paths.iter().rposition(|p| *p == self.0) {
            paths.remove(i);
        }
    }
}

fn lock_paths() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PATHS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A reader that fails once a signal arrived, so that a cooperative
/// command stops at its next read and unwinds.
pub(crate) struct Checked<R>(pub(crate) R);

impl<R: std::io::Read> std::io::Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if interrupted() {
            // Not ErrorKind::Interrupted: readers retry that.
            return Err(std::io::Error::other("interrupted"));
        }
        self.0.read(buf)
    }
}

/// Installs the handler: a thread that waits for the signals.
pub(crate) fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = flag();
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return; // the default actions stay: the next command cleans up
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let first = SIGNAL.swap(sig, Ordering::SeqCst) == 0;
            flag.store(true, Ordering::SeqCst);
            if first && COOPERATIVE.load(Ordering::SeqCst) {
                std::thread::spawn(|| {
                    std::thread::sleep(GRACE);
                    exit_now();
                });
                continue;
            }
            exit_now();
        }
    });
}

fn exit_now() -> ! {
    let paths = std::mem::take(&mut *lock_paths());
    for p in paths {
        // The command may still be writing into a tree: try again.
        let mut removed = Ok(());
        for _ in 0..5 {
            removed = match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
                Ok(_) => std::fs::remove_file(&p),
                Err(_) => Ok(()),
            };
            if removed.is_ok() {
                break;
            }
        }
        if let Err(e) = removed {
            eprintln!("pluginctl: removing {}: {e}", p.display());
        }
    }
    eprintln!("pluginctl: interrupted");
    std::process::exit(i32::from(exit_code()));
}
