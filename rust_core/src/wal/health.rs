//! Failures of the background thread's work. Nobody waits on a background fsync or seal, so
//! their errors would otherwise vanish while "fsynced at least once a second" quietly stops being
//! true: each failure is counted, kept for `Engine.background_status()` (and so `/health`), and
//! written to stderr (the journal) when it starts, when its message changes, and on recovery.

/// The background work whose failures are tracked separately: a working seal does not mean the
/// fsyncs work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Task {
    Fsync,
    Seal,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Fsync => "WAL fsync",
            Task::Seal => "segment seal",
        }
    }

    /// What the failure means for the data, for the log line.
    fn consequence(self) -> &'static str {
        match self {
            Task::Fsync => "acknowledged hits may not survive a power cut until an fsync works",
            Task::Seal => {
                "rows stay in the WAL, not yet visible to statistics, until a retry works"
            }
        }
    }
}

/// What `Engine.background_status()` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackgroundStatus {
    /// The failure going on now (the latest attempt of a task failed), if any.
    pub error: Option<String>,
    /// The latest failure, even when its task has worked since.
    pub last_error: Option<String>,
    /// When the latest failure happened, UTC milliseconds.
    pub last_error_at_ms: Option<i64>,
    /// Failures since the storage was opened.
    pub errors: u64,
}

#[derive(Debug, Default)]
pub(super) struct Health {
    fsync: Option<String>,
    seal: Option<String>,
    last: Option<(String, i64)>,
    errors: u64,
}

impl Health {
    fn slot(&mut self, task: Task) -> &mut Option<String> {
        match task {
            Task::Fsync => &mut self.fsync,
            Task::Seal => &mut self.seal,
        }
    }

    /// Record a failed attempt; logs it unless the same failure is already going on.
    pub(super) fn failed(&mut self, worker: u32, task: Task, error: &str, now_ms: i64) {
        let message = format!("{} failed: {error}", task.name());
        let slot = self.slot(task);
        if slot.as_deref() != Some(message.as_str()) {
            let consequence = task.consequence();
            eprintln!("trail storage (worker {worker}): {message}; {consequence}");
            *slot = Some(message.clone());
        }
        self.last = Some((message, now_ms));
        self.errors += 1;
    }

    /// Record a successful attempt; logs the recovery if the task was failing.
    pub(super) fn succeeded(&mut self, worker: u32, task: Task) {
        if let Some(message) = self.slot(task).take() {
            let name = task.name();
            eprintln!("trail storage (worker {worker}): {name} works again (was: {message})");
        }
    }

    pub(super) fn status(&self) -> BackgroundStatus {
        BackgroundStatus {
            error: self.fsync.clone().or_else(|| self.seal.clone()),
            last_error: self.last.as_ref().map(|(m, _)| m.clone()),
            last_error_at_ms: self.last.as_ref().map(|(_, t)| *t),
            errors: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_and_cleared_per_task() {
        let mut h = Health::default();
        assert_eq!(h.status(), BackgroundStatus::default());
        h.failed(0, Task::Seal, "disk full", 10);
        h.failed(0, Task::Seal, "disk full", 20);
        h.failed(0, Task::Fsync, "EIO", 30);
        let s = h.status();
        assert_eq!(s.error.as_deref(), Some("WAL fsync failed: EIO"));
        assert_eq!(s.last_error.as_deref(), Some("WAL fsync failed: EIO"));
        assert_eq!((s.last_error_at_ms, s.errors), (Some(30), 3));

        h.succeeded(0, Task::Fsync);
        assert_eq!(
            h.status().error.as_deref(),
            Some("segment seal failed: disk full")
        );
        h.succeeded(0, Task::Seal);
        let s = h.status();
        assert_eq!(s.error, None);
        assert_eq!(s.last_error.as_deref(), Some("WAL fsync failed: EIO"));
        assert_eq!(s.errors, 3);
    }
}
