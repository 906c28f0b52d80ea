//! Child processes of the coordinator: the kefu server, the echo server and the client workers
//! are all this binary, started again with a subcommand.
//!
//! A child talks JSON lines on stdout and reads commands on stdin; it exits when its stdin
//! closes, so nothing outlives the run even if the coordinator dies. Each child is also killed
//! (by its own handle) when dropped.

use crate::Result;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

/// A running child process of this binary.
pub struct Child {
    /// For messages: `worker 2`, `kefu server`.
    name: String,
    /// The process (killed on drop).
    process: tokio::process::Child,
    /// Commands go here; closing it asks the child to exit.
    stdin: Option<ChildStdin>,
    /// Replies come from here, one JSON value a line.
    lines: Lines<BufReader<ChildStdout>>,
    /// For `/proc/<pid>/status`.
    pid: u32,
}

impl Child {
    /// Starts `this-binary args…`; its stderr goes where `stderr` says.
    pub fn spawn(name: &str, args: &[&str], stderr: Stdio) -> Result<Child> {
        let exe = std::env::current_exe()?;
        let mut process = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // The server's log filter is ours to choose, not the caller's shell's.
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .kill_on_drop(true)
            .spawn()?;
        let pid = process.id().ok_or("the child exited at once")?;
        let stdin = process.stdin.take();
        let stdout = process.stdout.take().ok_or("the child has no stdout")?;
        Ok(Child {
            name: name.to_string(),
            process,
            stdin,
            lines: BufReader::new(stdout).lines(),
            pid,
        })
    }

    /// Sends one command.
    pub async fn send<T: Serialize>(&mut self, command: &T) -> Result<()> {
        let mut line = serde_json::to_string(command)?;
        line.push('\n');
        let stdin = self.stdin.as_mut().ok_or("stdin already closed")?;
        stdin.write_all(line.as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// The next reply, parsed; an error if none comes within `wait`.
    pub async fn recv<T: DeserializeOwned>(&mut self, wait: Duration) -> Result<T> {
        let line = match tokio::time::timeout(wait, self.lines.next_line()).await {
            Err(_) => return Err(format!("{} did not answer within {wait:?}", self.name).into()),
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Err(format!("{} exited", self.name).into()),
            Ok(Err(error)) => return Err(error.into()),
        };
        serde_json::from_str(&line)
            .map_err(|error| format!("{} said {line:?}: {error}", self.name).into())
    }

    /// The child's resident memory now, in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        vm_rss_kib(&status).ok_or_else(|| "no VmRSS line in /proc/<pid>/status".into())
    }

    /// How many file descriptors the child has open now.
    pub fn open_fds(&self) -> Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid))?.count())
    }

    /// CPU time the child has used so far (user + system).
    pub fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        cpu_ticks(&stat)
            .map(|ticks| Duration::from_millis(ticks * 1000 / CLOCK_TICKS_PER_SECOND))
            .ok_or_else(|| "unreadable /proc/<pid>/stat".into())
    }

    /// Closes stdin (the child exits by itself) and waits; kills it after 5 s.
    pub async fn stop(mut self) {
        self.stdin.take();
        if tokio::time::timeout(Duration::from_secs(5), self.process.wait())
            .await
            .is_err()
        {
            let _ = self.process.kill().await;
        }
    }
}

/// `USER_HZ`: the unit of `/proc/<pid>/stat` times (100 on every Linux this runs on).
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` text, in clock ticks.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces; the fields after it are plain numbers.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field n is at index n - 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A counter of the kernel's `TcpExt` statistics (`/proc/net/netstat`), e.g. `ListenOverflows`.
pub fn tcp_ext_counter(name: &str) -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    tcp_ext(&netstat, name)
}

fn tcp_ext(netstat: &str, name: &str) -> Option<u64> {
    let mut lines = netstat.lines().filter(|line| line.starts_with("TcpExt:"));
    let names = lines.next()?.split_whitespace();
    let values = lines.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == name)
        .and_then(|(_, value)| value.parse().ok())
}

/// The `VmRSS:` value of a `/proc/<pid>/status` text, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Calls `at_exit`, then `exit`, when stdin reaches its end (the coordinator is done or gone).
pub fn exit_when_stdin_closes(at_exit: fn()) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        at_exit();
        std::process::exit(0);
    });
}

/// Prints one JSON line on stdout, the channel to the coordinator.
pub fn reply<T: Serialize>(value: &T) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tkefu\nVmPeak:\t  900 kB\nVmRSS:\t  123456 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_kib(status), Some(123_456));
        assert_eq!(vm_rss_kib("Name:\tkefu\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_and_tcp_counters() {
        let stat = "4242 (kefu bench) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9";
        assert_eq!(cpu_ticks(stat), Some(300));
        let netstat = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                       TcpExt: 0 11124 11130\n\
                       IpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(tcp_ext(netstat, "ListenOverflows"), Some(11_124));
        assert_eq!(tcp_ext(netstat, "ListenDrops"), Some(11_130));
        assert_eq!(tcp_ext(netstat, "Nope"), None);
    }
}
