//! The engine: one `Incoming` in, one transaction, replies out through the
//! outbox.
//!
//! ```text
//! Incoming ─> mark update handled ─> upsert person + chat ─> command::parse
//!          ─> service::* (rules, permissions, audit) ─> outbox rows ─> COMMIT
//! ```
//!
//! All of it runs in one transaction: a crash leaves either nothing or the
//! whole effect including the replies, and a replayed update is a no-op.
//!
//! What can go wrong with an update, and what becomes of it:
//! - its handler fails (an error, or a panic, which is caught): it is tried
//!   again, [`MAX_TRIES`] times in all, each in a SAVEPOINT of its own, so
//!   the other updates of its group go on; then it is kept as failed
//!   (`store::failed`, `tuanbot failed list`), its id recorded as handled,
//!   and its sender gets a one-line apology ([`Outcome::Failed`]);
//! - the database is unavailable ([`StoreError::Unavailable`]): nothing is
//!   counted against the update; the writer waits (see [`crate::outage`])
//!   and does the same group again, every later update queued behind it in
//!   arrival order, for as long as the outage lasts;
//! - the process shuts down ([`StoreError::Stopped`]): the update is not
//!   done and its adapter must not acknowledge it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use futures_util::FutureExt;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::chat::{Capabilities, Incoming, Outgoing};
use crate::clock::Clock;
use crate::command::activity::ActivityRules;
use crate::command::{self, ParseOptions};
use crate::config::Settings;
use crate::domain::Role;
use crate::outage::Outage;
use crate::service::{self, Ctx};
use crate::store::db::Db;
use crate::store::{self, Store, StoreError, audit, chats, failed, outbox, people, updates};

/// Everything a service needs that outlives one message.
pub struct Engine {
    pub store: Store,
    pub settings: Settings,
    pub tz: Tz,
    pub clock: Arc<dyn Clock>,
    /// Platform usernames of the bot, learned at adapter start-up (`getMe`).
    bot_usernames: std::sync::RwLock<Vec<(crate::domain::Platform, String)>>,
    /// What each running adapter can render (edit, buttons, length).
    capabilities: std::sync::RwLock<Vec<(crate::domain::Platform, Capabilities)>>,
    /// Woken whenever new outbox rows are committed.
    pub outbox_ready: Arc<Notify>,
    /// Keyword rules of the `/log` parser (built in, plus the county's file).
    pub activity_rules: ActivityRules,
    /// Per platform, how to download an attachment (documents for imports).
    files: std::sync::RwLock<Vec<(crate::domain::Platform, Arc<dyn FileFetcher>)>>,
    /// The group-commit writer behind [`Engine::submit`], started on first use.
    writer: std::sync::OnceLock<mpsc::UnboundedSender<Work>>,
    /// Updates handed to the writer and not answered yet.
    waiting: AtomicUsize,
    /// Per-person and per-chat flood limits (`service::flood`).
    pub flood: service::flood::Limiter,
    /// A test seam: see [`Engine::inject_fault`].
    fault: std::sync::RwLock<Option<FaultHook>>,
}

/// Called with each update right before its service runs ([`Engine::inject_fault`]).
pub type FaultHook = Arc<dyn Fn(&Incoming) + Send + Sync>;

/// Downloads an attachment by its platform file reference. Adapters register
/// one; services ask [`Engine::file_fetcher`] and never know the platform.
/// A fetcher refuses files over
/// [`MAX_FILE_BYTES`](crate::chat::files::MAX_FILE_BYTES) rather than
/// reading them whole.
pub trait FileFetcher: Send + Sync {
    fn fetch<'a>(
        &'a self,
        file_ref: &'a str,
    ) -> crate::chat::BoxFuture<'a, Result<Vec<u8>, crate::chat::files::FetchError>>;
}

/// What the group-commit writer is given, in arrival order.
// Almost every item is an update; boxing them would cost an allocation per
// claim in a rush to save memory only on the rare barrier.
#[allow(clippy::large_enum_variant)]
enum Work {
    Update(Job),
    /// Answered once every update queued before it is committed.
    Barrier(oneshot::Sender<()>),
}

/// One update waiting for the group-commit writer, and who to answer.
struct Job {
    msg: Incoming,
    done: oneshot::Sender<Result<Outcome, StoreError>>,
    /// When it was handed to the writer (claim latency for `/metrics`).
    queued_at: std::time::Instant,
    /// Its text as parsed by the sender, so the writer's serial work stays
    /// small.
    read: Read,
    /// Its wish numbers when it is a plain claim ([`Engine::plain_claim`]).
    claim: Option<Vec<u32>>,
}

/// A message's text as the parser sees it (normalised), what it says, and
/// for an import the document it names, downloaded before its transaction.
struct Read {
    text: String,
    parsed: command::Parsed,
    document: Option<service::files::Fetched>,
}

/// The group-commit writer is gone (the engine is shutting down).
fn writer_stopped() -> StoreError {
    StoreError::Stopped("engine writer stopped".into())
}

/// How many times an update is tried before it is kept as failed.
pub const MAX_TRIES: u32 = 3;

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    format!("panicked: {text}")
}

/// Whether a message's command imports a document, which is then
/// downloaded before its transaction begins.
fn needs_document(parsed: &command::Parsed) -> bool {
    matches!(
        parsed,
        command::Parsed::Command(command::Command::WishImport(_) | command::Command::RosterImport)
    )
}

/// Why a group's transaction did not commit.
#[derive(Debug, thiserror::Error)]
enum GroupError {
    /// A run of claims failed as a whole (an error or a panic, not an
    /// outage): worth doing again one by one.
    #[error("{0}")]
    ClaimRun(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for GroupError {
    fn from(e: sqlx::Error) -> Self {
        GroupError::Store(e.into())
    }
}

/// Most updates the writer puts into one transaction.
const GROUP_COMMIT_MAX: usize = 256;
/// Times the writer yields before collecting a group.
const GROUP_COMMIT_YIELDS: usize = 4;

/// Days an update id is remembered (`processed_updates`) so that a
/// redelivered update is not handled twice. Telegram keeps undelivered
/// updates for 24 hours, and a OneBot implementation replays only what it
/// holds across a reconnect; the scheduler's slow sweep forgets older ids,
/// or the table would grow by every message of every group forever.
pub const KEEP_UPDATE_IDS_DAYS: i64 = 7;

/// What became of `tuanbot failed retry ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// No failed update with that id.
    NotFound,
    /// Handled this time, and removed from the failed updates.
    Handled { replies: usize },
    /// It had been handled meanwhile (a redelivery): removed.
    Duplicate,
    /// It failed again (the reason); it stays, with one more try.
    FailedAgain(String),
}

/// What became of one update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled; `replies` messages were queued.
    Handled { replies: usize },
    /// Already handled before (replayed update).
    Duplicate,
    /// Its handling failed [`MAX_TRIES`] times: kept as failed update `id`
    /// (`store::failed`), recorded as handled, its sender told. Done with,
    /// as far as the platform is concerned.
    Failed { id: i64 },
}

impl Engine {
    pub fn new(store: Store, settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Engine> {
        let tz = settings.tz()?;
        let activity_rules = settings.activity_rules()?;
        Ok(Engine {
            store,
            tz,
            clock,
            bot_usernames: Default::default(),
            capabilities: Default::default(),
            outbox_ready: Arc::new(Notify::new()),
            activity_rules,
            files: Default::default(),
            writer: std::sync::OnceLock::new(),
            waiting: AtomicUsize::new(0),
            flood: service::flood::Limiter::new(&settings.flood),
            fault: Default::default(),
            settings,
        })
    }

    /// For tests of failure handling: `hook` is called with every update
    /// right before its service runs (on its own or in a run of claims);
    /// a panic there is the handler's panic. Nothing else sets it.
    #[doc(hidden)]
    pub fn inject_fault(&self, hook: Option<FaultHook>) {
        *self.fault.write().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    fn fault(&self, msg: &Incoming) {
        let hook = self.fault.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(msg);
        }
    }

    /// Register how attachments on `platform` are downloaded.
    pub fn set_file_fetcher(&self, platform: crate::domain::Platform, f: Arc<dyn FileFetcher>) {
        let mut all = self.files.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(p, _)| *p != platform);
        all.push((platform, f));
    }

    /// How to download attachments from `platform`, if its adapter said.
    pub fn file_fetcher(&self, platform: crate::domain::Platform) -> Option<Arc<dyn FileFetcher>> {
        let all = self.files.read().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, f)| f.clone())
    }

    /// Handle one update through the group-commit writer: every update
    /// waiting when the writer is free goes into ONE transaction (up to
    /// [`GROUP_COMMIT_MAX`]), each inside its own SAVEPOINT so a failing
    /// update rolls back alone; one COMMIT (one fsync on SQLite) then answers
    /// them all. Same effects and order as [`Engine::handle`] one by one (the
    /// order of arrival in the channel), at a fraction of the commits during
    /// a claim rush.
    pub async fn submit(self: &Arc<Self>, msg: Incoming) -> Result<Outcome, StoreError> {
        self.enqueue(msg).await
    }

    /// [`Engine::submit`] in two steps: the update takes its place in the
    /// writer's queue now (so updates enqueued one after another are handled
    /// in that order), and the returned future answers when it is handled.
    /// Adapters enqueue each update as it arrives and await the answer
    /// elsewhere, so a rush of claims fills the writer's groups.
    ///
    /// The answer is `Ok` once the update is handled, was handled before,
    /// or is kept as failed ([`Outcome`]): the adapter may acknowledge it.
    /// During a database outage it does not come until the database is
    /// back; `Err(StoreError::Stopped)` means the engine is shutting down
    /// and the update was not done.
    ///
    /// An import whose document must be downloaded is the exception: it
    /// waits until the updates before it are committed (the file it names
    /// may be one of them), is downloaded outside any transaction
    /// (`service::files`), and then joins the queue behind whatever came
    /// meanwhile.
    pub fn enqueue(
        self: &Arc<Self>,
        msg: Incoming,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send + 'static {
        use futures_util::future::Either;
        let tx = self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(Arc::downgrade(self), rx));
            tx
        });
        let mut read = self.read(&msg);
        if needs_document(&read.parsed) {
            // Unless the message carries its file, the file it names may be
            // in an update queued before it: wait until those committed.
            let barrier = service::files::carried_document(&msg).is_none().then(|| {
                let (passed, barrier) = oneshot::channel();
                tx.send(Work::Barrier(passed)).ok().map(|_| barrier)
            });
            let (engine, tx) = (self.clone(), tx.clone());
            return Either::Left(async move {
                let passed = match barrier {
                    Some(Some(barrier)) => barrier.await.is_ok(),
                    Some(None) => false,
                    None => true,
                };
                if !passed {
                    return Err(writer_stopped());
                }
                // Reading who may import and which file waits out an
                // outage like any update; a panic is a failed download.
                let fetched = AssertUnwindSafe(crate::outage::retry("an import's file", || {
                    service::files::fetch_document(&engine, &msg)
                }))
                .catch_unwind()
                .await;
                read.document = match fetched {
                    Ok(fetched) => fetched?,
                    Err(panic) => Some(service::files::Fetched::Failed(
                        crate::chat::files::FetchError::Failed(panic_text(&*panic)),
                    )),
                };
                engine.queue_job(&tx, msg, read).await
            });
        }
        Either::Right(self.queue_job(tx, msg, read))
    }

    /// Put an update in the writer's queue now; the future answers when it
    /// is handled.
    fn queue_job(
        &self,
        tx: &mpsc::UnboundedSender<Work>,
        msg: Incoming,
        read: Read,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send + 'static + use<> {
        let (done, answer) = oneshot::channel();
        let job = Job {
            claim: self.plain_claim(&msg, &read.parsed),
            read,
            msg,
            done,
            queued_at: std::time::Instant::now(),
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let sent = tx.send(Work::Update(job)).is_ok();
        if !sent {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        async move {
            if !sent {
                return Err(writer_stopped());
            }
            answer.await.map_err(|_| writer_stopped())?
        }
    }

    /// Updates handed to the group-commit writer and not answered yet:
    /// during a database outage, those waiting for it.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Handle what the writer collected (see [`Engine::submit`]), a group
    /// per transaction: runs of consecutive plain claim messages (`认领 12`)
    /// go to the wish service together ([`Engine::claim_run`]), everything
    /// else one update per SAVEPOINT. Should a run fail as a whole, the
    /// transaction is rolled back and the group handled again, every update
    /// on its own. On a SQLite file each run of plain claims and each run of
    /// other updates is a group of its own, so the claims can go through the
    /// direct connection (see `store::db`); elsewhere all of it is one group.
    async fn handle_jobs(&self, mut jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        if !self.store.has_direct() {
            return self.handle_group(jobs).await;
        }
        while !jobs.is_empty() {
            let claim = jobs[0].claim.is_some();
            let n = jobs
                .iter()
                .take_while(|j| j.claim.is_some() == claim)
                .count();
            let rest = jobs.split_off(n);
            self.handle_group(jobs).await;
            jobs = rest;
        }
    }

    /// One group: try it as a whole; should a run of claims fail, again
    /// one update at a time; during a database outage, wait and try the
    /// same group again (nothing of it is counted against its updates, and
    /// everything queued later waits behind it). Should the group fail to
    /// commit for another reason, each update gets a transaction of its
    /// own, so the one at fault fails alone. Then every update is answered.
    async fn handle_group(&self, mut jobs: Vec<Job>) {
        let claims: Vec<Option<Vec<u32>>> = jobs.iter_mut().map(|j| j.claim.take()).collect();
        let mut results: Vec<Outcome> = Vec::with_capacity(jobs.len());
        let mut together = true;
        let mut outage: Option<Outage> = None;
        let committed = loop {
            results.clear();
            match self.try_group(&jobs, &claims, together, &mut results).await {
                Ok(()) => break Ok(()),
                Err(GroupError::Store(e @ StoreError::Unavailable(_))) => {
                    outage
                        .get_or_insert_with(|| Outage::new("updates"))
                        .wait(self.waiting(), &e)
                        .await;
                }
                // Only a try with runs of claims (`together`) fails so.
                Err(GroupError::ClaimRun(e)) => {
                    tracing::warn!(error = %e, n = jobs.len(), "claim group failed; one by one");
                    together = false;
                }
                Err(GroupError::Store(e)) => break Err(e),
            }
        };
        if let Some(outage) = outage {
            outage.over();
        }
        match committed {
            Ok(()) => {
                let any_replies = results.iter().any(|r| {
                    matches!(r, Outcome::Handled { replies } if *replies > 0)
                        || matches!(r, Outcome::Failed { .. })
                });
                if any_replies {
                    self.outbox_ready.notify_waiters();
                }
                for ((job, result), claim) in jobs.into_iter().zip(results).zip(&claims) {
                    log_update(&job.msg, &job.read.parsed, &Ok(result));
                    if claim.is_some() && matches!(result, Outcome::Handled { .. }) {
                        crate::metrics::record_claim(job.queued_at.elapsed().as_secs_f64());
                    }
                    self.answer(job, Ok(result));
                }
            }
            Err(StoreError::Stopped(text)) => {
                // Shutting down: nothing of it happened.
                for job in jobs {
                    self.answer(job, Err(StoreError::Stopped(text.clone())));
                }
            }
            Err(e) if jobs.len() == 1 => {
                // One update whose transaction can't commit even after its
                // tries (nor keep it as failed): nothing of it happened, and
                // its adapter sees the cause.
                tracing::error!(error = %e, "an update's transaction could not commit");
                if let Some(job) = jobs.into_iter().next() {
                    self.answer(job, Err(e));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, n = jobs.len(), "group not committed; one by one");
                for (mut job, claim) in jobs.into_iter().zip(claims) {
                    job.claim = claim;
                    Box::pin(self.handle_group(vec![job])).await;
                }
            }
        }
    }

    /// Answer whoever waits for `job`.
    fn answer(&self, job: Job, result: Result<Outcome, StoreError>) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _ = job.done.send(result);
    }

    /// One attempt at a group: one transaction, claim runs handled together
    /// when `together`, each other update tried on its own
    /// ([`Engine::tries`]), its outcome pushed to `results`. Commits, or
    /// rolls back on any error.
    async fn try_group(
        &self,
        jobs: &[Job],
        claims: &[Option<Vec<u32>>],
        together: bool,
        results: &mut Vec<Outcome>,
    ) -> Result<(), GroupError> {
        let started = std::time::Instant::now();
        if together
            && claims.iter().all(Option::is_some)
            && let Some(mut tx) = self.store.begin_direct().await?
        {
            // A run of claims on SQLite: on the direct connection, without
            // a thread hop per statement (see `store::db`).
            let run = AssertUnwindSafe(self.claim_run(&mut tx, jobs, claims))
                .catch_unwind()
                .await;
            let outcomes = match claim_run_result(run) {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    let _ = tx.rollback();
                    return Err(e);
                }
            };
            let handled = started.elapsed();
            let wal_pages = tx.commit()?;
            results.extend(outcomes);
            log_group(jobs.len(), started, handled, Some(wal_pages));
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        let handled = async {
            let mut i = 0;
            while i < jobs.len() {
                let run = claims[i..]
                    .iter()
                    .take_while(|c| c.is_some())
                    .count()
                    .max(1);
                if together && claims[i].is_some() {
                    // No SAVEPOINT: if the run fails, the whole transaction
                    // goes and the group is done again without runs.
                    let done = AssertUnwindSafe(self.claim_run(
                        &mut tx,
                        &jobs[i..i + run],
                        &claims[i..i + run],
                    ))
                    .catch_unwind()
                    .await;
                    results.extend(claim_run_result(done)?);
                    i += run;
                    continue;
                }
                for job in &jobs[i..i + run] {
                    results.push(self.tries(&mut tx, &job.msg, &job.read).await?);
                }
                i += run;
            }
            Ok::<(), GroupError>(())
        }
        .await;
        if let Err(e) = handled {
            // Ended now rather than by a ROLLBACK queued on the pooled
            // connection.
            let _ = tx.rollback().await;
            return Err(e);
        }
        let handled = started.elapsed();
        tx.commit().await?;
        log_group(jobs.len(), started, handled, None);
        Ok(())
    }

    /// Handle one update inside `conn`'s transaction, up to [`MAX_TRIES`]
    /// times, each try in a SAVEPOINT of its own with a panic caught; after
    /// the last failed try, keep it as failed ([`Engine::keep_failed`]).
    /// Errs only when the database is unavailable or the transaction itself
    /// broke: then nothing of it counts.
    async fn tries(
        &self,
        conn: &mut store::Conn,
        msg: &Incoming,
        read: &Read,
    ) -> Result<Outcome, StoreError> {
        let mut why = String::new();
        for n in 1..=MAX_TRIES {
            match self.attempt(conn, msg, read).await? {
                Ok(outcome) => return Ok(outcome),
                Err(e) => {
                    tracing::warn!(update = %msg.update_id, platform = %msg.platform, attempt = n, error = %e, "handling an update failed");
                    why = e;
                }
            }
        }
        let mut sp = sqlx::Connection::begin(&mut *conn).await?;
        match self
            .keep_failed(&mut sp, msg, &why, i64::from(MAX_TRIES))
            .await
        {
            Ok(kept) => {
                sp.commit().await?;
                // Not handled before: its own tries' SAVEPOINTs recorded
                // nothing.
                Ok(kept.map_or(Outcome::Duplicate, |id| Outcome::Failed { id }))
            }
            Err(e) => {
                let _ = sp.rollback().await;
                Err(e)
            }
        }
    }

    /// Keep `msg` as failed without running it, because it stopped the
    /// process `tries` times (its adapter counts: see
    /// `chat::telegram::inflight`), unless it was handled meanwhile.
    pub async fn give_up(
        &self,
        msg: &Incoming,
        why: &str,
        tries: i64,
    ) -> Result<Outcome, StoreError> {
        let mut tx = self.store.begin().await?;
        match self.keep_failed(&mut tx, msg, why, tries).await {
            Ok(Some(id)) => {
                tx.commit().await?;
                self.outbox_ready.notify_waiters();
                Ok(Outcome::Failed { id })
            }
            Ok(None) => {
                tx.rollback().await?;
                Ok(Outcome::Duplicate)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// One try at an update in a SAVEPOINT: `Ok(Ok(_))` done (released),
    /// `Ok(Err(why))` failed (rolled back: the handler's error, or its
    /// panic), `Err` when the database is unavailable or the SAVEPOINT
    /// can't be taken or ended.
    async fn attempt(
        &self,
        conn: &mut store::Conn,
        msg: &Incoming,
        read: &Read,
    ) -> Result<Result<Outcome, String>, StoreError> {
        let mut sp = sqlx::Connection::begin(&mut *conn).await?;
        let run = AssertUnwindSafe(self.handle_in(&mut sp, msg, read))
            .catch_unwind()
            .await;
        match run {
            Ok(Ok(outcome)) => {
                sp.commit().await?;
                Ok(Ok(outcome))
            }
            Ok(Err(e)) if e.is_transient() => {
                let _ = sp.rollback().await;
                Err(e)
            }
            Ok(Err(e)) => {
                sp.rollback().await?;
                Ok(Err(e.to_string()))
            }
            Err(panic) => {
                sp.rollback().await?;
                Ok(Err(panic_text(&*panic)))
            }
        }
    }

    /// Keep an update that failed `tries` times (`store::failed`), record
    /// its id as handled (a redelivery is then a no-op), apologise to its
    /// sender in one line, and write the audit row. Returns the kept row's
    /// id; `None` (and nothing done) when the update was handled already.
    async fn keep_failed(
        &self,
        conn: &mut store::Conn,
        msg: &Incoming,
        error: &str,
        tries: i64,
    ) -> Result<Option<i64>, StoreError> {
        let now = store::ms(self.now());
        if !updates::mark(&mut *conn, msg.platform, &msg.update_id, now).await? {
            return Ok(None);
        }
        let incoming = serde_json::to_string(msg)
            .map_err(|e| StoreError::Corrupt(format!("update {}: {e}", msg.update_id)))?;
        let id = failed::keep(
            &mut *conn,
            &failed::NewFailed {
                platform: msg.platform,
                update_id: &msg.update_id,
                chat_id: &msg.chat_id,
                sender_id: &msg.sender_id,
                text: &msg.text,
                incoming: &incoming,
                error,
                tries,
                at_ms: now,
            },
        )
        .await?;
        // The person's row may be what fails: their client's language, else
        // the default.
        let locale = crate::i18n::pick(None, msg.sender_language.as_deref(), &self.settings.locale);
        let mut apology = Outgoing::new(
            msg.platform,
            msg.chat_id.clone(),
            rust_i18n::t!("failed.apology", locale = locale),
        );
        apology.reply_to = msg.message_id.clone();
        // A platform event was sent by no one who could read an apology.
        if msg.event.is_none() {
            outbox::enqueue(&mut *conn, &apology, now, None, now).await?;
        }
        audit::record(
            &mut *conn,
            &audit::Entry {
                at_ms: now,
                platform: msg.platform,
                actor: &msg.sender_id,
                action: "update.failed",
                entity: "failed_update",
                entity_id: Some(id.to_string()),
                detail: serde_json::json!({
                    "update_id": msg.update_id,
                    "chat_id": msg.chat_id,
                    "tries": tries,
                    "error": error,
                }),
            },
        )
        .await?;
        crate::metrics::update_failed();
        tracing::error!(update = %msg.update_id, platform = %msg.platform, failed_id = id, tries, %error, "update kept as failed (tuanbot failed list)");
        Ok(Some(id))
    }

    /// The wish numbers of a message that is nothing but a claim
    /// (`认领 12、15`) and that [`Engine::claim_run`] may handle with others:
    /// no reply, attachment or button, from an account the settings don't
    /// promote (that happens in [`Engine::handle_in`]).
    fn plain_claim(&self, msg: &Incoming, parsed: &command::Parsed) -> Option<Vec<u32>> {
        if msg.reply_to.is_some()
            || !msg.attachments.is_empty()
            || msg.callback_id.is_some()
            || self.settings.is_admin(msg.platform, &msg.sender_id)
        {
            return None;
        }
        match parsed {
            command::Parsed::Command(command::Command::Claim(n)) if !n.is_empty() => {
                Some(n.clone())
            }
            _ => None,
        }
    }

    /// Normalise and parse a message's text (pure; no store access).
    fn read(&self, msg: &Incoming) -> Read {
        let text = command::normalize::normalize(&msg.text);
        let username = self.bot_username(msg.platform);
        let parsed = command::parse(
            &text,
            &ParseOptions {
                bot_username: username.as_deref(),
                bot_name: Some(&self.settings.bot_name),
                now_local: msg.at.with_timezone(&self.tz).naive_local(),
                activity_rules: Some(&self.activity_rules),
            },
        );
        Read {
            text,
            parsed,
            document: None,
        }
    }

    /// A run of plain claim messages with the effects of [`Engine::handle_in`]
    /// one after another, in a few statements for all of them: the update
    /// ids, the senders and the chats in one go each, then
    /// [`service::wishes::claim_many`], then the replies.
    async fn claim_run(
        &self,
        tx: &mut impl Db,
        jobs: &[Job],
        numbers: &[Option<Vec<u32>>],
    ) -> Result<Vec<Outcome>, StoreError> {
        let ids: Vec<_> = jobs
            .iter()
            .map(|j| {
                (
                    j.msg.platform,
                    j.msg.update_id.as_str(),
                    store::ms(j.msg.at),
                )
            })
            .collect();
        let fresh = updates::mark_many(&mut *tx, &ids).await?;
        // Senders (latest name wins) and chats, each once.
        let mut people_by: std::collections::HashMap<
            (crate::domain::Platform, String),
            people::Person,
        > = Default::default();
        let mut platforms: Vec<crate::domain::Platform> =
            jobs.iter().map(|j| j.msg.platform).collect();
        platforms.sort_unstable_by_key(|p| p.as_str());
        platforms.dedup();
        for platform in platforms {
            let mut accounts: Vec<(&str, &str)> = Vec::new();
            for j in jobs.iter().rev().filter(|j| j.msg.platform == platform) {
                if !accounts.iter().any(|(u, _)| *u == j.msg.sender_id) {
                    accounts.push((&j.msg.sender_id, &j.msg.sender_name));
                }
            }
            let now_ms = jobs.iter().map(|j| store::ms(j.msg.at)).max().unwrap_or(0);
            for (user, p) in people::seen_many(&mut *tx, platform, &accounts, now_ms).await? {
                people_by.insert((platform, user), p);
            }
        }
        let mut seen_chats: Vec<(crate::domain::Platform, &str)> = Vec::new();
        for j in jobs.iter().rev() {
            let m = &j.msg;
            if !seen_chats.contains(&(m.platform, m.chat_id.as_str())) {
                seen_chats.push((m.platform, m.chat_id.as_str()));
                let at = store::ms(m.at);
                chats::upsert_seen(
                    &mut *tx,
                    m.platform,
                    &m.chat_id,
                    m.chat_kind,
                    m.chat_title.as_deref(),
                    at,
                )
                .await?;
            }
        }
        let mut reqs = Vec::with_capacity(jobs.len());
        for ((job, nums), new) in jobs.iter().zip(numbers).zip(&fresh) {
            let (true, Some(nums)) = (*new, nums) else {
                continue;
            };
            let m = &job.msg;
            let person = people_by
                .get(&(m.platform, m.sender_id.clone()))
                .ok_or_else(|| StoreError::Corrupt(format!("sender {} not stored", m.sender_id)))?;
            reqs.push(service::wishes::ClaimRequest {
                msg: m,
                person,
                locale: crate::i18n::pick(
                    person.locale.as_deref(),
                    m.sender_language.as_deref(),
                    &self.settings.locale,
                ),
                numbers: nums,
            });
        }
        for req in &reqs {
            self.fault(req.msg);
        }
        let replies = service::wishes::claim_many(self, &mut *tx, &reqs).await?;
        let mut counts = replies.iter().map(Vec::len);
        for (req, queued) in reqs.iter().zip(&replies) {
            enqueue_replies(&mut *tx, queued, req.msg.at).await?;
        }
        Ok(fresh
            .iter()
            .map(|&new| {
                if new {
                    crate::metrics::message_handled();
                    Outcome::Handled {
                        replies: counts.next().unwrap_or(0),
                    }
                } else {
                    Outcome::Duplicate
                }
            })
            .collect())
    }

    /// Remember the bot's username on a platform (for `/cmd@bot`).
    pub fn set_bot_username(&self, platform: crate::domain::Platform, name: &str) {
        let mut names = self
            .bot_usernames
            .write()
            .unwrap_or_else(|e| e.into_inner());
        names.retain(|(p, _)| *p != platform);
        names.push((platform, name.to_string()));
    }

    fn bot_username(&self, platform: crate::domain::Platform) -> Option<String> {
        let names = self.bot_usernames.read().unwrap_or_else(|e| e.into_inner());
        names
            .iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, n)| n.clone())
    }

    /// Record what an adapter can render; services read it through
    /// [`Engine::capabilities`] and never ask which platform they serve.
    pub fn set_capabilities(&self, platform: crate::domain::Platform, caps: Capabilities) {
        let mut all = self.capabilities.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(p, _)| *p != platform);
        all.push((platform, caps));
    }

    /// What `platform` can render. Unknown platforms get the most
    /// conservative answer: no edits, no buttons.
    pub fn capabilities(&self, platform: crate::domain::Platform) -> Capabilities {
        let all = self.capabilities.read().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .find(|(p, _)| *p == platform)
            .map(|(_, c)| *c)
            .unwrap_or(Capabilities {
                edit: false,
                buttons: false,
                max_text_chars: 4000,
            })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The calendar date of `at` in the configured zone.
    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.tz).date_naive()
    }

    /// Handle one update in one transaction, tried as in a group (see
    /// [`Engine::tries`]). A database outage is returned, not waited out.
    #[tracing::instrument(skip_all, fields(platform = %msg.platform, chat = %msg.chat_id, user = %msg.sender_id, update = %msg.update_id))]
    pub async fn handle(&self, msg: &Incoming) -> Result<Outcome, StoreError> {
        let started = std::time::Instant::now();
        let mut read = self.read(msg);
        if needs_document(&read.parsed) {
            read.document = service::files::fetch_document(self, msg).await?;
        }
        let mut tx = self.store.begin().await?;
        let outcome = match self.tries(&mut tx, msg, &read).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // Ended now rather than by a ROLLBACK queued on the pooled
                // connection; the error is what the caller needs to see.
                let _ = tx.rollback().await;
                let e = Err(e);
                log_update(msg, &read.parsed, &e);
                return e;
            }
        };
        log_update(msg, &read.parsed, &Ok(outcome));
        match outcome {
            Outcome::Duplicate => tx.rollback().await?,
            Outcome::Handled { replies } => {
                tx.commit().await?;
                if replies > 0 {
                    self.outbox_ready.notify_waiters();
                }
                if self.plain_claim(msg, &read.parsed).is_some() {
                    crate::metrics::record_claim(started.elapsed().as_secs_f64());
                }
            }
            Outcome::Failed { .. } => {
                tx.commit().await?;
                self.outbox_ready.notify_waiters();
            }
        }
        Ok(outcome)
    }

    /// Run a kept failed update (`store::failed`) through the engine again,
    /// as of the time it arrived: in one transaction, its id is forgotten
    /// as handled, it is handled, and on success its row is removed. A
    /// failure (or a panic) leaves everything as it was, but for the row's
    /// new error and one more try.
    pub async fn retry_failed(&self, id: i64) -> Result<Retried, StoreError> {
        let mut conn = self.store.conn().await?;
        let Some(row) = failed::get(&mut conn, id).await? else {
            return Ok(Retried::NotFound);
        };
        drop(conn);
        let msg: Incoming = serde_json::from_str(&row.incoming)
            .map_err(|e| StoreError::Corrupt(format!("failed update {id}: {e}")))?;
        let mut read = self.read(&msg);
        if needs_document(&read.parsed) {
            read.document = service::files::fetch_document(self, &msg).await?;
        }
        let mut tx = self.store.begin().await?;
        updates::forget(&mut tx, msg.platform, &msg.update_id).await?;
        let outcome = match self.attempt(&mut tx, &msg, &read).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(why)) => {
                tx.rollback().await?;
                let mut tx = self.store.begin().await?;
                let at_ms = store::ms(self.now());
                let incoming = row.incoming.as_str();
                failed::keep(
                    &mut *tx,
                    &failed::NewFailed {
                        platform: row.platform,
                        update_id: &row.update_id,
                        chat_id: &row.chat_id,
                        sender_id: &row.sender_id,
                        text: &row.text,
                        incoming,
                        error: &why,
                        tries: 1,
                        at_ms,
                    },
                )
                .await?;
                tx.commit().await?;
                return Ok(Retried::FailedAgain(why));
            }
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        let detail =
            serde_json::json!({"update_id": msg.update_id, "outcome": format!("{outcome:?}")});
        self.remove_failed(&mut tx, id, msg.platform, "update.retried", detail)
            .await?;
        tx.commit().await?;
        self.outbox_ready.notify_waiters();
        Ok(match outcome {
            Outcome::Handled { replies } => Retried::Handled { replies },
            Outcome::Duplicate | Outcome::Failed { .. } => Retried::Duplicate,
        })
    }

    /// Remove a kept failed update without running it (audited). `false`
    /// when there is none with that id.
    pub async fn drop_failed(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.store.begin().await?;
        let Some(row) = failed::get(&mut tx, id).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let detail = serde_json::json!({"update_id": row.update_id, "error": row.error});
        self.remove_failed(&mut tx, id, row.platform, "update.dropped", detail)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Remove kept failed update `id`, with the operator's audit row.
    async fn remove_failed(
        &self,
        conn: &mut store::Conn,
        id: i64,
        platform: crate::domain::Platform,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        failed::remove(&mut *conn, id).await?;
        audit::record(
            &mut *conn,
            &audit::Entry {
                at_ms: store::ms(self.now()),
                platform,
                actor: "cli",
                action,
                entity: "failed_update",
                entity_id: Some(id.to_string()),
                detail,
            },
        )
        .await
    }

    async fn handle_in(
        &self,
        tx: &mut store::Conn,
        msg: &Incoming,
        read: &Read,
    ) -> Result<Outcome, StoreError> {
        let now = msg.at;
        let now_ms = store::ms(now);
        if !updates::mark(&mut *tx, msg.platform, &msg.update_id, now_ms).await? {
            return Ok(Outcome::Duplicate);
        }
        if let Some(event) = &msg.event {
            // A platform event about a chat, not a message.
            self.fault(msg);
            let queued: Vec<Queued> = service::dispatch_event(&mut *tx, &self.settings, msg, event)
                .await?
                .into_iter()
                .map(|message| Queued {
                    message,
                    not_before: None,
                    coalesce_key: None,
                })
                .collect();
            enqueue_replies(&mut *tx, &queued, now).await?;
            return Ok(Outcome::Handled {
                replies: queued.len(),
            });
        }
        let (mut person, _new) = people::upsert_seen(
            &mut *tx,
            msg.platform,
            &msg.sender_id,
            &msg.sender_name,
            now_ms,
        )
        .await?;
        if person.role != Role::Staff && self.settings.is_admin(msg.platform, &msg.sender_id) {
            people::set_role(&mut *tx, person.id, Role::Staff, now_ms).await?;
            audit::record(
                &mut *tx,
                &audit::Entry {
                    at_ms: now_ms,
                    platform: msg.platform,
                    actor: "config",
                    action: "person.role",
                    entity: "person",
                    entity_id: Some(person.id.to_string()),
                    detail: serde_json::json!({"role": "staff", "reason": "admins setting"}),
                },
            )
            .await?;
            person.role = Role::Staff;
        }
        let chat = chats::upsert_seen(
            &mut *tx,
            msg.platform,
            &msg.chat_id,
            msg.chat_kind,
            msg.chat_title.as_deref(),
            now_ms,
        )
        .await?;
        // A photo or document is remembered before anything else, so that a
        // later `/done 12` or `/wishes import` replying to it finds it by the
        // quoted id alone.
        service::files::remember(&mut *tx, msg).await?;
        let locale = crate::i18n::pick(
            person.locale.as_deref(),
            msg.sender_language.as_deref(),
            &self.settings.locale,
        );
        let mut ctx = Ctx {
            engine: self,
            tx: &mut *tx,
            msg,
            text: &read.text,
            document: read.document.as_ref(),
            person,
            chat,
            now,
            today: self.local_date(now),
            locale,
            out: Vec::new(),
        };
        self.fault(msg);
        service::dispatch(&mut ctx, read.parsed.clone()).await?;
        let queued = std::mem::take(&mut ctx.out);
        enqueue_replies(&mut *tx, &queued, now).await?;
        crate::metrics::message_handled();
        Ok(Outcome::Handled {
            replies: queued.len(),
        })
    }
}

/// Write a message's replies to the outbox, in order.
async fn enqueue_replies(
    tx: &mut impl Db,
    queued: &[Queued],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for q in queued {
        outbox::enqueue(
            &mut *tx,
            &q.message,
            store::ms(q.not_before.unwrap_or(now)),
            q.coalesce_key.as_deref(),
            store::ms(now),
        )
        .await?;
    }
    Ok(())
}

/// A run of claims' result with its panic caught: an outage stays one (the
/// group waits and is tried again whole); an error or a panic makes the
/// run worth doing again one update at a time.
fn claim_run_result(
    run: std::thread::Result<Result<Vec<Outcome>, StoreError>>,
) -> Result<Vec<Outcome>, GroupError> {
    match run {
        Ok(Ok(outcomes)) => Ok(outcomes),
        Ok(Err(e)) if e.is_transient() => Err(GroupError::Store(e)),
        Ok(Err(e)) => Err(GroupError::ClaimRun(e.to_string())),
        Err(panic) => Err(GroupError::ClaimRun(panic_text(&*panic))),
    }
}

/// The group-commit writer: wait for one job, take every job already
/// waiting (up to the cap), handle them in one transaction, repeat. Stops
/// when the engine is dropped.
async fn writer(engine: std::sync::Weak<Engine>, mut rx: mpsc::UnboundedReceiver<Work>) {
    while let Some(first) = rx.recv().await {
        let mut work = vec![first];
        // Let callers that are already runnable (answered by the last
        // commit, about to send their next update) reach the channel, so a
        // group is not cut short to one update and one fsync each.
        for _ in 0..GROUP_COMMIT_YIELDS {
            tokio::task::yield_now().await;
        }
        while work.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(w) => work.push(w),
                Err(_) => break,
            }
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let mut jobs = Vec::with_capacity(work.len());
        for w in work {
            match w {
                Work::Update(job) => jobs.push(job),
                Work::Barrier(passed) => {
                    // Everything before it is committed first.
                    engine.handle_jobs(std::mem::take(&mut jobs)).await;
                    let _ = passed.send(());
                }
            }
        }
        engine.handle_jobs(jobs).await;
        // After the answers, not inside a commit that someone waits for.
        if let Err(e) = engine.store.checkpoint_if_due().await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// The debug event per handled update: where it came from, what kind of
/// command it was and what became of it — never names or message text, so
/// logs hold no personal data at any level.
fn log_update(msg: &Incoming, parsed: &command::Parsed, result: &Result<Outcome, StoreError>) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let kind = match parsed {
        _ if msg.event.is_some() => "chat_event".into(),
        command::Parsed::Command(c) => {
            let name = format!("{c:?}");
            let end = name
                .find(|c: char| !c.is_alphanumeric())
                .unwrap_or(name.len());
            name[..end].to_string()
        }
        command::Parsed::NotCommand => "chatter".into(),
        command::Parsed::Unknown(_) => "unknown".into(),
        command::Parsed::Invalid(_) => "invalid".into(),
        command::Parsed::TooLong { .. } => "too_long".into(),
    };
    let (outcome, replies) = match result {
        Ok(Outcome::Handled { replies }) => ("handled", *replies),
        Ok(Outcome::Duplicate) => ("duplicate", 0),
        Ok(Outcome::Failed { .. }) => ("kept_as_failed", 0),
        Err(_) => ("error", 0),
    };
    tracing::debug!(
        platform = %msg.platform,
        chat = %msg.chat_id,
        update = %msg.update_id,
        command = %kind,
        outcome,
        replies,
        "update"
    );
}

/// The writer's debug event per group: its size, how long handling and the
/// commit took, and on the direct SQLite connection the WAL's length after;
/// the commit's time goes to the metrics too.
fn log_group(
    n: usize,
    started: std::time::Instant,
    handled: std::time::Duration,
    wal_pages: Option<i32>,
) {
    let commit = started.elapsed().saturating_sub(handled);
    crate::metrics::record_commit(commit.as_secs_f64());
    tracing::debug!(
        n,
        wal_pages,
        handle_us = handled.as_micros() as u64,
        commit_us = commit.as_micros() as u64,
        "group"
    );
}

/// A message a service wants sent, before it becomes an outbox row.
#[derive(Debug, Clone)]
pub struct Queued {
    pub message: Outgoing,
    /// Send no earlier than this (coalescing windows, schedules).
    pub not_before: Option<DateTime<Utc>>,
    pub coalesce_key: Option<String>,
}
