//! One change at a time per state folder: a lock file held (flock) for the whole change, from
//! the backup to the audit line, naming its holder. A second change, from another terminal or
//! the screen, is refused with who holds the lock and since when; the lock goes with the
//! process, however it ends (the kernel releases a flock when the file closes).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Error, Result};

/// The lock's file in the state folder.
pub const LOCK_FILE: &str = "change.lock";

/// A held lock: released when dropped.
#[derive(Debug)]
pub struct ChangeLock {
    _file: File,
}

/// Takes the state folder's change lock for `what` (e.g. `fix fail-open
/// validatingwebhookconfiguration/opa`), or says who holds it.
pub fn take(state_dir: &Path, what: &str) -> Result<ChangeLock> {
    super::backup::private_dir(state_dir)?;
    let path = state_dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::File(format!("could not open the lock {}: {e}", path.display())))?;
    // SAFETY: flock(2) on a descriptor this function owns; no memory is involved.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !taken {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Err(Error::Busy(describe_holder(holder.trim())));
    }
    let now = jiff::Timestamp::now();
    let record = format!(
        "pid {}: {what}\nsince {}\n",
        std::process::id(),
        now.as_second()
    );
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(record.as_bytes()))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        return Err(Error::File(format!(
            "could not write the lock {}: {e}",
            path.display()
        )));
    }
    Ok(ChangeLock { _file: file })
}

/// "another kube-rescue change is in progress (pid N: fix ...), started 12 s ago".
fn describe_holder(holder: &str) -> String {
    let mut lines = holder.lines();
    let who = lines.next().unwrap_or("").trim();
    let since = lines
        .next()
        .and_then(|l| l.strip_prefix("since "))
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| jiff::Timestamp::from_second(s).ok());
    let mut text = "another kube-rescue change is in progress".to_string();
    if !who.is_empty() {
        text.push_str(&format!(" ({who})"));
    }
    if let Some(since) = since {
        let age = jiff::Timestamp::now().as_second() - since.as_second();
        text.push_str(&format!(", started {} s ago", age.max(0)));
    }
    text.push_str("; nothing was changed: wait for it to end, then plan again");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_change_is_refused_naming_the_first_until_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let first = take(
            dir.path(),
            "fix fail-open validatingwebhookconfiguration/opa",
        )
        .unwrap();
        let second = take(dir.path(), "fix delete validatingwebhookconfiguration/opa")
            .unwrap_err()
            .to_string();
        assert!(
            second.contains(&format!(
                "another kube-rescue change is in progress (pid {}: fix fail-open validatingwebhookconfiguration/opa), started",
                std::process::id()
            )),
            "{second}"
        );
        drop(first);
        assert!(take(dir.path(), "fix delete validatingwebhookconfiguration/opa").is_ok());
    }
}
