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
    let mut report = SweepReport::default();
    for _ in 0..MAX_BATCHES {
        let due = match app.store.sweep_due(app.now(), BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(detail = %e.detail, "listing sessions to sweep failed");
                report.failed += 1;
                break;
            }
        };
        let count = due.len();
        let done = join_all(due.iter().map(|task| sweep(app, task))).await;
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
    report
}

async fn sweep(app: &App, task: &SweepTask) -> Result<SweepReport> {
    let now = app.now();
    let mut report = SweepReport::default();
    match task {
        SweepTask::Erase(id) => {
            // The host hears of the end, with the final template, before anything
            // is erased; a failed publish leaves the session for the next sweep.
            if host::end_session(app, id).await? {
                report.ended = 1;
            }
            if app.store.erase_session(id, now).await? == EraseOutcome::Erased {
                tracing::info!(session = %id, "expired session erased");
                report.erased = 1;
            }
        }
        SweepTask::CheckPresence(id) => {
            report.checked = 1;
            report.reclaimed = app.store.reclaim_seats(id, now).await?;
            let Some(members) = app.store.read_members(id, now).await? else {
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

/// The sweeper runs once a minute; looking sooner than this gains nothing.
const MIN_RECHECK: Duration = Duration::from_secs(10);
