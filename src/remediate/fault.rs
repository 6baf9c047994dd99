//! Test seams of the change path, named by environment variables that nothing but the test
//! suite sets, so that a crash and a full disk can be tried at exact points of a real run:
//!
//! - `KUBE_RESCUE_TEST_NO_SPACE=POINT[,POINT...]`: the write at POINT fails with ENOSPC, as on
//!   a full disk. Points: `backup`, `audit-attempt`, `audit-outcome`, `audit-verification`.
//! - `KUBE_RESCUE_TEST_PAUSE_AT=POINT`: at POINT the process says `paused at POINT` on stderr
//!   and waits forever, for the test to kill it there. Points: see [`pause`] calls in
//!   `apply.rs` (`lock-taken`, `backup-written`, `attempt-recorded`, `request-answered`,
//!   `outcome-recorded`, `verified`).

use std::path::Path;

const NO_SPACE: &str = "KUBE_RESCUE_TEST_NO_SPACE";
const PAUSE_AT: &str = "KUBE_RESCUE_TEST_PAUSE_AT";

/// ENOSPC if the test seam says the write at `point` fails.
pub fn no_space(point: &str, path: &Path) -> super::Result<()> {
    let Some(points) = std::env::var_os(NO_SPACE) else {
        return Ok(());
    };
    if points
        .to_string_lossy()
        .split(',')
        .any(|p| p.trim() == point)
    {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        return Err(super::Error::File(format!(
            "could not write {}: {e}",
            path.display()
        )));
    }
    Ok(())
}

/// Waits forever at `point` if the test seam says so (in test builds only: a release build
/// never waits here, whatever its environment).
pub fn pause(point: &str) {
    if cfg!(debug_assertions) && std::env::var_os(PAUSE_AT).is_some_and(|p| p == point) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "paused at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
