//! A sample Docker logging plugin: Docker's log driver protocol
//! (`/LogDriver.StartLogging|StopLogging|Capabilities|ReadLogs`).
//!
//! `StartLogging` names a FIFO that dockerd writes a container's output
//! to, as length-prefixed protobuf `LogEntry` messages; a thread reads
//! it until dockerd closes it, appending each line to
//! `$LOG_DIR/<ContainerID>.log` and keeping the entries in memory for
//! `ReadLogs` (so `docker logs` works), which answers with the same
//! framing, honouring `Since`, `Until` and `Tail` and ending the stream
//! (no follow). A line comes back with the newline that dockerd took off,
//! unless it is partial: dockerd prints `ReadLogs` lines as they are.
//!
//! Environment: `$SOCKET` (default `log.sock`), `$SOCKET_DIR` (default
//! `/run/docker/plugins`), `$LOG_DIR` (default `/data`). Exits on SIGTERM
//! or SIGINT.

use driver_plugins::logentry::{LogEntry, read_frame, write_frame};
use driver_plugins::{JSON_STREAM, Request, Response, json, quote};
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const OK: &str = r#"{"Err":""}"#;

fn main() {
    let dir = PathBuf::from(std::env::var("LOG_DIR").unwrap_or_else(|_| "/data".to_owned()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("log-plugin: creating {}: {e}", dir.display());
    }
    let state = Arc::new(State::new(dir));
    driver_plugins::run("log.sock", move |req| state.handle(req));
}

struct State {
    log_dir: PathBuf,
    /// Each container's entries, in the order they came.
    entries: Mutex<HashMap<String, Vec<LogEntry>>>,
    /// The FIFOs being read, and whose they are.
    active: Mutex<HashMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn err(message: &str) -> Response {
    Response::json(format!("{{\"Err\":{}}}", quote(message)))
}

impl State {
    fn new(log_dir: PathBuf) -> Self {
        Self {
            log_dir,
            entries: Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
        }
    }

    fn handle(self: &Arc<Self>, req: &Request) -> Response {
        let body = req.text();
        match req.path.as_str() {
            "/Plugin.Activate" => Response::json(r#"{"Implements":["LogDriver"]}"#),
            "/LogDriver.Capabilities" => Response::json(r#"{"Cap":{"ReadLogs":true},"Err":""}"#),
            "/LogDriver.StartLogging" => self.start(&body),
            "/LogDriver.StopLogging" => {
                let file = json::string(&body, "File").unwrap_or_default();
                match lock(&self.active).remove(&file) {
                    Some(id) => eprintln!("log-plugin: stop logging {id}, draining {file}"),
                    None => eprintln!("log-plugin: stop logging {file}: not reading it"),
                }
                Response::json(OK)
            }
            "/LogDriver.ReadLogs" => self.read_logs(&body),
            other => Response::error(404, &format!("unknown endpoint {other}")),
        }
    }

    fn start(self: &Arc<Self>, body: &str) -> Response {
        let Some(file) = json::string(body, "File").filter(|f| !f.is_empty()) else {
            return err("no File to read logs from");
        };
        let info = json::object(body, "Info").unwrap_or("{}");
        let id = json::string(info, "ContainerID").unwrap_or_default();
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return err(&format!("invalid ContainerID {id:?}"));
        }
        if !Path::new(&file).exists() {
            return err(&format!("no such file {file}"));
        }
        lock(&self.active).insert(file.clone(), id.clone());
        let state = Arc::clone(self);
        std::thread::spawn(move || state.read_fifo(&file, &id));
        Response::json(OK)
    }

    /// Reads the FIFO `file` until dockerd closes it.
    fn read_fifo(&self, file: &str, id: &str) {
        // Blocks until dockerd's write side is open, as it is by now.
        let fifo = match std::fs::File::open(file) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("log-plugin: opening {file}: {e}");
                lock(&self.active).remove(file);
                return;
            }
        };
        let path = self.log_dir.join(format!("{id}.log"));
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| eprintln!("log-plugin: opening {}: {e}", path.display()))
            .ok();
        let mut fifo = BufReader::new(fifo);
        let mut count = 0usize;
        let end = loop {
            let entry = match read_frame(&mut fifo) {
                Ok(Some(entry)) => entry,
                Ok(None) => break "end of stream".to_owned(),
                Err(e) => break format!("reading: {e}"),
            };
            if let Some(f) = &mut log {
                let mut line = entry.line.clone();
                if !entry.partial {
                    line.push(b'\n');
                }
                if let Err(e) = f.write_all(&line) {
                    eprintln!("log-plugin: writing {}: {e}", path.display());
                    log = None;
                }
            }
            lock(&self.entries)
                .entry(id.to_owned())
                .or_default()
                .push(entry);
            count += 1;
        };
        let mut active = lock(&self.active);
        if active.get(file).is_some_and(|i| i == id) {
            active.remove(file);
        }
        eprintln!("log-plugin: {file} ({id}): {count} entries, {end}");
    }

    fn read_logs(&self, body: &str) -> Response {
        let config = json::object(body, "Config").unwrap_or("{}");
        let info = json::object(body, "Info").unwrap_or("{}");
        let id = json::string(info, "ContainerID").unwrap_or_default();
        let since = json::string(config, "Since").and_then(|s| parse_time(&s));
        let until = json::string(config, "Until").and_then(|s| parse_time(&s));
        let tail = json::integer(config, "Tail").unwrap_or(-1);
        let in_range = |e: &&LogEntry| {
            let t = i128::from(e.time_nano);
            since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
        };
        let mut entries: Vec<LogEntry> = lock(&self.entries)
            .get(&id)
            .map(|all| all.iter().filter(in_range).cloned().collect())
            .unwrap_or_default();
        // Docker's Tail: negative for all, else the last that many.
        if let Ok(tail) = usize::try_from(tail) {
            entries.drain(..entries.len().saturating_sub(tail));
        }
        eprintln!("log-plugin: read logs of {id}: {} entries", entries.len());
        Response::stream(JSON_STREAM, move |out| {
            for mut entry in entries {
                if !entry.partial {
                    entry.line.push(b'\n');
                }
                write_frame(out, &entry)?;
            }
            Ok(())
        })
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// An RFC 3339 time (Go's JSON for `time.Time`) in nanoseconds since the
/// epoch; `None` for Go's zero time (no bound) or what does not parse.
fn parse_time(text: &str) -> Option<i128> {
    let num = |p: &str| p.parse::<i64>().ok();
    let (date, time) = text.split_once(['T', 't'])?;
    let mut ymd = date.splitn(3, '-').map(num);
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    if year <= 1 {
        return None;
    }
    let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let (clock, zone) = time.split_at(time.rfind(['+', '-'])?);
        let (hours, minutes) = zone[1..].split_once(':')?;
        let offset = num(hours)? * 3600 + num(minutes)? * 60;
        let east = zone.starts_with('+');
        (clock, if east { offset } else { -offset })
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.splitn(3, ':').map(num);
    let (hour, minute, second) = (hms.next()??, hms.next()??, hms.next()??);
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(i128::from(secs - offset) * 1_000_000_000 + i128::from(num(&nanos)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: i64 = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z

    fn entry(source: &str, at: i64, line: &str, partial: bool) -> LogEntry {
        LogEntry {
            source: source.to_owned(),
            time_nano: BASE + at,
            line: line.as_bytes().to_vec(),
            partial,
        }
    }

    fn read_logs(state: &Arc<State>, id: &str, config: &str) -> Vec<LogEntry> {
        // As dockerd 20.10 sends it: ReadConfig, then the logger.Info.
        let body = format!(
            "{{\"Config\":{config},\"Info\":{{\"Config\":{{}},\"ContainerID\":\"{id}\",\
             \"ContainerName\":\"/web\",\"ContainerEntrypoint\":\"sh\",\"ContainerArgs\":[\"-c\",\
             \"echo hello\"],\"ContainerImageID\":\"sha256:abc\",\"ContainerImageName\":\"busybox\",\
             \"ContainerCreated\":\"2023-11-14T22:13:19.5Z\",\"ContainerEnv\":[\"PATH=/bin\"],\
             \"ContainerLabels\":{{}},\"LogPath\":\"\",\"DaemonName\":\"docker\"}}}}\n"
        );
        let response = state.handle(&Request::post("/LogDriver.ReadLogs", body));
        let mut stream = &response.into_body().unwrap()[..];
        std::iter::from_fn(|| read_frame(&mut stream).unwrap()).collect()
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(i128::from(BASE)));
        assert_eq!(
            parse_time("2023-11-14T23:13:20.000000007+01:00"),
            Some(i128::from(BASE) + 7)
        );
        assert_eq!(parse_time("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(
            parse_time("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000_000)
        );
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn logs_a_fifo_and_reads_it_back() {
        let dir = std::env::temp_dir().join(format!("log-plugin-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("logging")).unwrap();
        let fifo = dir.join("logging/0123456789abcdef");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("no mkfifo: skipped");
            return;
        }
        let state = Arc::new(State::new(dir.clone()));
        let id = "3f4e5d6c7b8a";
        let call = |path: &str, body: String| state.handle(&Request::post(path, body)).text();
        assert_eq!(
            call("/Plugin.Activate", String::new()),
            r#"{"Implements":["LogDriver"]}"#
        );
        assert_eq!(
            call("/LogDriver.Capabilities", "null\n".into()),
            r#"{"Cap":{"ReadLogs":true},"Err":""}"#
        );
        let start = format!(
            "{{\"File\":\"{}\",\"Info\":{{\"Config\":{{\"max-size\":\"1m\"}},\"ContainerID\":\"{id}\",\
             \"ContainerName\":\"/web\",\"ContainerLabels\":{{}},\"DaemonName\":\"docker\"}}}}\n",
            fifo.display()
        );
        assert_eq!(call("/LogDriver.StartLogging", start), OK);

        // dockerd's side: the write end of the FIFO.
        let sent = [
            entry("stdout", 1, "hello", false),
            entry("stderr", 2, "oops", false),
            entry("stdout", 3, "par", true),
            entry("stdout", 4, "tial", false),
        ];
        let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        for e in &sent {
            write_frame(&mut w, e).unwrap();
        }
        let stop = format!("{{\"File\":\"{}\"}}\n", fifo.display());
        assert_eq!(call("/LogDriver.StopLogging", stop), OK);
        drop(w);
        for _ in 0..500 {
            if lock(&state.entries)
                .get(id)
                .is_some_and(|v| v.len() == sent.len())
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            lock(&state.entries).get(id).map(Vec::as_slice),
            Some(&sent[..])
        );
        let file = std::fs::read_to_string(dir.join(format!("{id}.log"))).unwrap();
        assert_eq!(file, "hello\noops\npartial\n");

        // Lines come back as `docker logs` is to print them.
        let all = read_logs(
            &state,
            id,
            r#"{"Since":"0001-01-01T00:00:00Z","Until":"0001-01-01T00:00:00Z","Follow":false,"Tail":-1,"Details":false}"#,
        );
        let lines: Vec<_> = all
            .iter()
            .map(|e| (e.source.as_str(), String::from_utf8_lossy(&e.line)))
            .collect();
        assert_eq!(
            lines,
            [
                ("stdout", "hello\n".into()),
                ("stderr", "oops\n".into()),
                ("stdout", "par".into()),
                ("stdout", "tial\n".into())
            ]
        );
        assert_eq!(all[1].time_nano, BASE + 2);
        assert!(all[2].partial && !all[3].partial);
        let tail = read_logs(&state, id, r#"{"Tail":2,"Follow":true}"#);
        assert_eq!(
            tail.iter().map(|e| e.time_nano - BASE).collect::<Vec<_>>(),
            [3, 4]
        );
        assert!(read_logs(&state, id, r#"{"Tail":0}"#).is_empty());
        let since = read_logs(
            &state,
            id,
            r#"{"Since":"2023-11-14T22:13:20.000000002Z","Until":"2023-11-14T23:13:20.000000003+01:00","Tail":-1}"#,
        );
        assert_eq!(
            since.iter().map(|e| e.time_nano - BASE).collect::<Vec<_>>(),
            [2, 3]
        );
        assert!(read_logs(&state, "other", r#"{"Tail":-1}"#).is_empty());

        let missing = format!(
            "{{\"File\":\"{}\",\"Info\":{{\"ContainerID\":\"{id}\"}}}}",
            dir.join("nope").display()
        );
        assert!(call("/LogDriver.StartLogging", missing).contains("no such file"));
        assert!(
            call(
                "/LogDriver.StartLogging",
                "{\"File\":\"/x\",\"Info\":{\"ContainerID\":\"../x\"}}".into()
            )
            .contains("invalid")
        );
        assert_eq!(
            state
                .handle(&Request::post("/LogDriver.Nope", "{}"))
                .status(),
            404
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
