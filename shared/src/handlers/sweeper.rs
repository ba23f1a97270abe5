//! The sweeper, run every minute: tells the host of sessions that expired (with
//! the final template) and then erases them, drops stale connections from
//! occupied sessions that nobody touches (every client gone without a
//! `$disconnect`), and tells the host of their progress. It finds its work through the store's sweep index,
//! never by scanning.

use std::time::Duration;

use futures_util::future::join_all;

use crate::app::App;
use crate::error::Result;
use crate::session::HEARTBEAT_TIMEOUT;
use crate::session::presence::PRESENCE_CHECK_INTERVAL;
use crate::store::{EraseOutcome, SweepTask};
use crate::usecase::host;
use crate::usecase::presence::drop_stale;

/// Sessions handled per batch; a run goes on until nothing is due.
const BATCH: usize = 100;

/// The most batches one run handles, so a run ends well inside its timeout.
const MAX_BATCHES: usize = 50;

/// How long one run starts new work: the function's timeout is 60 s, and one more
/// page of an erasure or one more batch takes a few seconds at most. A session
/// left half-erased stays due and is finished by the next run.
pub const RUN_BUDGET: Duration = Duration::from_secs(40);

/// The schedule's event; its contents do not matter.
pub type ScheduleEvent = serde_json::Value;

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Sessions whose end the host was told of.
    pub ended: usize,
    pub erased: usize,
    pub checked: usize,
    pub dropped: usize,
    /// `coedit.session.updated` events sent.
    pub updated: usize,
    /// Seats given back that a join or departure left half-way.
    pub reclaimed: usize,
    pub failed: usize,
}

pub async fn run(app: &App) -> SweepReport {
    let deadline = tokio::time::Instant::now() + RUN_BUDGET;
    let mut report = SweepReport::default();
    for _ in 0..MAX_BATCHES {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let due = match app.store.sweep_due(app.now(), BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(detail = %e.detail, "listing sessions to sweep failed");
                report.failed += 1;
                break;
            }
        };
        let count = due.len();
        let done = join_all(due.iter().map(|task| sweep(app, task, deadline))).await;
        for outcome in done {
            match outcome {
                Ok(r) => {
                    report.ended += r.ended;
                    report.updated += r.updated;
                    report.erased += r.erased;
                    report.checked += r.checked;
                    report.dropped += r.dropped;
                    report.reclaimed += r.reclaimed;
                }
                Err(e) => {
                    tracing::error!(detail = %e.detail, "sweeping a session failed");
                    report.failed += 1;
                }
            }
        }
        // A task that could not be finished stays due; stop rather than spin on it.
        if count < BATCH || report.failed > 0 {
            break;
        }
    }
    tracing::info!(?report, "sweep done");
    use crate::metrics::{Metric, record_all};
    record_all(&[
        (Metric::SweepEnded, report.ended as u64),
        (Metric::SweepErased, report.erased as u64),
        (Metric::SweepDropped, report.dropped as u64),
        (Metric::SweepUpdated, report.updated as u64),
        (Metric::SweepFailures, report.failed as u64),
    ]);
    report
}

async fn sweep(app: &App, task: &SweepTask, deadline: tokio::time::Instant) -> Result<SweepReport> {
    let now = app.now();
    let mut report = SweepReport::default();
    match task {
        SweepTask::Erase(id) => end_and_erase(app, id, deadline, &mut report).await?,
        SweepTask::CheckPresence(id) => {
            report.checked = 1;
            report.reclaimed = app.store.reclaim_seats(id, now).await?;
            let Some(members) = app.store.read_members(id, now).await? else {
                // Not live any more: past its age with people in it (or gone).
                end_and_erase(app, id, deadline, &mut report).await?;
                return Ok(report);
            };
            report.dropped = drop_stale(app, &members).await?;
            match host::report_progress(app, &members).await {
                Ok(told) => report.updated = usize::from(told),
                Err(e) => {
                    tracing::warn!(detail = %e.detail, "reporting a session's progress failed")
                }
            }
            // Look again when the first of the remaining connections could go stale.
            let next = members
                .present(now)
                .map(|c| c.last_seen.plus(HEARTBEAT_TIMEOUT))
                .min()
                .map_or(now.plus(PRESENCE_CHECK_INTERVAL), |at| {
                    at.max(now.plus(MIN_RECHECK))
                });
            if report.dropped < members.connections.len() {
                app.store.schedule_presence_check(id, next).await?;
            }
        }
    }
    Ok(report)
}

/// Tells the host of a session's end (with the final template) before anything is
/// erased, then erases it a page at a time while the run has time; a failed
/// publish, or a session too large for this run, is left for the next.
async fn end_and_erase(
    app: &App,
    id: &crate::session::SessionId,
    deadline: tokio::time::Instant,
    report: &mut SweepReport,
) -> Result<()> {
    if host::end_session(app, id).await? {
        report.ended += 1;
    }
    loop {
        match app.store.erase_session(id, app.now()).await? {
            EraseOutcome::Erased => {
                tracing::info!(session = %id, "expired session erased");
                report.erased += 1;
                return Ok(());
            }
            EraseOutcome::NotDue => return Ok(()),
            EraseOutcome::MoreLeft if tokio::time::Instant::now() < deadline => {}
            EraseOutcome::MoreLeft => {
                tracing::info!(session = %id, "erasing goes on in the next run");
                return Ok(());
            }
        }
    }
}

/// The sweeper runs once a minute; looking sooner than this gains nothing.
const MIN_RECHECK: Duration = Duration::from_secs(10);
