//! The engine: one `Incoming` in, one transaction, replies out through the
//! outbox. It knows no platform and names no feature: it parses, records
//! the update id, and hands the rest to the service hooks.
//!
//! ```text
//! Incoming ─> command::parse ─> mark update handled
//!          ─> service::dispatch (sender, chat, the feature; replies in Out)
//!             or, for a batch of updates, service::run_batch
//!          ─> Out::write (outbox rows) ─> COMMIT ─> wake the dispatcher
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::chat::{Incoming, Outgoing};
use crate::clock::Clock;
use crate::command::{self, ParseOptions};
use crate::config::Settings;
use crate::outage::Outage;
use crate::service::{self, Env};
use crate::store::db::Db;
use crate::store::{self, Store, StoreError, audit, failed, outbox, updates};
use chrono::{DateTime, Utc};

/// The engine: the [`Env`] every service call sees, plus the group-commit
/// writer. Derefs to its [`Env`] (store, settings, zone, clock, ...).
pub struct Engine {
    env: Arc<Env>,
    /// Platform usernames of the bot, learned at adapter start-up (`getMe`).
    bot_usernames: std::sync::RwLock<Vec<(crate::domain::Platform, String)>>,
    /// The group-commit writer behind [`Engine::submit`], started on first use.
    writer: std::sync::OnceLock<mpsc::UnboundedSender<Work>>,
    /// Updates handed to the writer and not answered yet.
    waiting: AtomicUsize,
    /// A service wrote outbox rows of its own (`Out::enqueue`): the
    /// dispatcher is woken after the commit even if nothing was queued.
    wake: AtomicBool,
    /// A test seam: see [`Engine::inject_fault`].
    fault: std::sync::RwLock<Option<FaultHook>>,
}

impl std::ops::Deref for Engine {
    type Target = Env;
    fn deref(&self) -> &Env {
        &self.env
    }
}

/// Called with each update right before its service runs ([`Engine::inject_fault`]).
pub type FaultHook = Arc<dyn Fn(&Incoming) + Send + Sync>;

pub use crate::service::FileFetcher;

/// What the group-commit writer is given, in arrival order.
// Almost every item is an update; boxing them would cost an allocation per
// claim in a rush to save memory only on the rare barrier.
#[allow(clippy::large_enum_variant)]
enum Work {
    Update(Submitted),
    /// Answered once every update queued before it is committed.
    Barrier(oneshot::Sender<()>),
}

/// One update submitted to the group-commit writer, and who to answer.
struct Submitted {
    msg: Incoming,
    done: oneshot::Sender<Result<Outcome, StoreError>>,
    /// When it was handed to the writer (claim latency for `/metrics`).
    submitted_at: std::time::Instant,
    /// Its text as parsed by the sender, so the writer's serial work stays
    /// small.
    read: Read,
    /// Its batch key, when a service may handle it with its neighbours
    /// (`service::batch_key`).
    batch: Option<service::Batched>,
}

/// A message's text as the parser sees it (normalised), what it says, and
/// for an import the document it names, downloaded before its transaction.
struct Read {
    text: String,
    parsed: command::Parsed,
    document: Option<service::Fetched>,
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

/// Why a group's transaction did not commit.
#[derive(Debug, thiserror::Error)]
enum GroupError {
    /// A batch failed as a whole (an error or a panic, not an outage):
    /// worth doing again one by one.
    #[error("{0}")]
    Batch(String),
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

pub use crate::store::updates::KEEP_UPDATE_IDS_DAYS;

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
        Ok(Engine {
            env: Arc::new(Env::new(store, settings, clock)?),
            bot_usernames: Default::default(),
            writer: std::sync::OnceLock::new(),
            waiting: AtomicUsize::new(0),
            wake: AtomicBool::new(false),
            fault: Default::default(),
        })
    }

    /// For tests of failure handling: `hook` is called with every update
    /// right before its service runs (on its own or in a batch);
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

    /// Handle one update through the group-commit writer: every update
    /// waiting when the writer is free goes into ONE transaction (up to
    /// [`GROUP_COMMIT_MAX`]), each inside its own SAVEPOINT so a failing
    /// update rolls back alone; one COMMIT (one fsync on SQLite) then answers
    /// them all. Same effects and order as [`Engine::handle`] one by one (the
    /// order of arrival in the channel), at a fraction of the commits during
    /// a claim rush.
    ///
    /// The update takes its place in the writer's queue now (so updates
    /// submitted one after another are handled in that order), and the
    /// returned future answers when it is handled. Adapters submit each
    /// update as it arrives and await the answer elsewhere, so a rush of
    /// claims fills the writer's groups.
    ///
    /// The answer is `Ok` once the update is handled, was handled before,
    /// or is kept as failed ([`Outcome`]): the adapter may acknowledge it.
    /// During a database outage it does not come until the database is
    /// back; `Err(StoreError::Stopped)` means the engine is shutting down
    /// and the update was not done.
    ///
    /// An import whose document must be downloaded is the exception: unless
    /// the message carries its file, it waits until the updates before it
    /// are committed (the file it names may be one of them), is downloaded
    /// outside any transaction (`service::download`), and then joins the
    /// queue behind whatever came meanwhile.
    pub fn submit(
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
        if let Some(download) = service::download_for(&read.parsed, &msg) {
            // Unless the message carries its file, the file it names may be
            // in an update queued before it: wait until those committed.
            let barrier = (download == service::Download::Earlier).then(|| {
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
                    service::download(&engine.env, &msg)
                }))
                .catch_unwind()
                .await;
                read.document = match fetched {
                    Ok(fetched) => fetched?,
                    Err(panic) => Some(service::Fetched::Failed(
                        crate::chat::files::FetchError::Failed(panic_text(&*panic)),
                    )),
                };
                engine.to_writer(&tx, msg, read).await
            });
        }
        Either::Right(self.to_writer(tx, msg, read))
    }

    /// Put an update in the writer's queue now; the future answers when it
    /// is handled.
    fn to_writer(
        &self,
        tx: &mpsc::UnboundedSender<Work>,
        msg: Incoming,
        read: Read,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send + 'static + use<> {
        let (done, answer) = oneshot::channel();
        let job = Submitted {
            batch: service::batch_key(&self.env, &msg, &read.parsed),
            read,
            msg,
            done,
            submitted_at: std::time::Instant::now(),
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

    /// The [`Env`] services see, for the scheduler (`jobs::run`).
    pub fn env(&self) -> Arc<Env> {
        self.env.clone()
    }

    /// Updates handed to the group-commit writer and not answered yet:
    /// during a database outage, those waiting for it.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Handle what the writer collected (see [`Engine::submit`]), a group
    /// per transaction: runs of consecutive updates with the same batch key
    /// (`service::batch_key`) go to their service together
    /// ([`Engine::batch_run`]), everything else one update per SAVEPOINT.
    /// Should a batch fail as a whole, the transaction is rolled back and
    /// the group handled again, every update on its own. On a SQLite file
    /// each batch and each run of other updates is a group of its own, so
    /// the batch can go through the direct connection (see `store::db`);
    /// elsewhere all of it is one group.
    async fn handle_submitted(&self, mut jobs: Vec<Submitted>) {
        if jobs.is_empty() {
            return;
        }
        if !self.store.has_direct() {
            return self.handle_group(jobs).await;
        }
        while !jobs.is_empty() {
            let key = batch_key(&jobs[0].batch);
            let n = jobs
                .iter()
                .take_while(|j| batch_key(&j.batch) == key)
                .count();
            let rest = jobs.split_off(n);
            self.handle_group(jobs).await;
            jobs = rest;
        }
    }

    /// One group: try it as a whole; should a batch fail, again one update
    /// at a time; during a database outage, wait and try the same group
    /// again (nothing of it is counted against its updates, and everything
    /// queued later waits behind it). Should the group fail to commit for
    /// another reason, each update gets a transaction of its own, so the one
    /// at fault fails alone. Then every update is answered.
    async fn handle_group(&self, mut jobs: Vec<Submitted>) {
        let batches: Vec<Option<service::Batched>> =
            jobs.iter_mut().map(|j| j.batch.take()).collect();
        let mut results: Vec<Outcome> = Vec::with_capacity(jobs.len());
        let mut together = true;
        let mut outage: Option<Outage> = None;
        let committed = loop {
            results.clear();
            match self
                .try_group(&jobs, &batches, together, &mut results)
                .await
            {
                Ok(()) => break Ok(()),
                Err(GroupError::Store(e @ StoreError::Unavailable(_))) => {
                    outage
                        .get_or_insert_with(|| Outage::new("updates"))
                        .wait(self.waiting(), &e)
                        .await;
                }
                // Only a try with batches (`together`) fails so.
                Err(GroupError::Batch(e)) => {
                    tracing::warn!(error = %e, n = jobs.len(), "batch failed; one by one");
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
                if any_replies | self.wake.swap(false, Ordering::Relaxed) {
                    self.outbox_ready.notify_waiters();
                }
                for ((job, result), batch) in jobs.into_iter().zip(results).zip(&batches) {
                    log_update(&job.msg, &job.read.parsed, &Ok(result));
                    if batch.is_some() && matches!(result, Outcome::Handled { .. }) {
                        // Batched updates are the claim rush.
                        crate::metrics::record_claim(job.submitted_at.elapsed().as_secs_f64());
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
                for (mut job, batch) in jobs.into_iter().zip(batches) {
                    job.batch = batch;
                    Box::pin(self.handle_group(vec![job])).await;
                }
            }
        }
    }

    /// Answer whoever waits for `job`.
    fn answer(&self, job: Submitted, result: Result<Outcome, StoreError>) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _ = job.done.send(result);
    }

    /// One attempt at a group: one transaction, batches handled together
    /// when `together`, each other update tried on its own
    /// ([`Engine::tries`]), its outcome pushed to `results`. Commits, or
    /// rolls back on any error.
    async fn try_group(
        &self,
        jobs: &[Submitted],
        batches: &[Option<service::Batched>],
        together: bool,
        results: &mut Vec<Outcome>,
    ) -> Result<(), GroupError> {
        let started = std::time::Instant::now();
        let key = batch_key(&batches[0]);
        if together
            && key.is_some()
            && batches.iter().all(|b| batch_key(b) == key)
            && let Some(mut tx) = self.store.begin_direct().await?
        {
            // A batch on SQLite: on the direct connection, without a
            // thread hop per statement (see `store::db`).
            let run = AssertUnwindSafe(self.batch_run(&mut tx, jobs, batches))
                .catch_unwind()
                .await;
            let outcomes = match batch_result(run) {
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
                let key = batch_key(&batches[i]);
                if together && key.is_some() {
                    // No SAVEPOINT: if the batch fails, the whole
                    // transaction goes and the group is done again without
                    // batches.
                    let run = batches[i..]
                        .iter()
                        .take_while(|b| batch_key(b) == key)
                        .count();
                    let done = AssertUnwindSafe(self.batch_run(
                        &mut tx,
                        &jobs[i..i + run],
                        &batches[i..i + run],
                    ))
                    .catch_unwind()
                    .await;
                    results.extend(batch_result(done)?);
                    i += run;
                    continue;
                }
                results.push(self.tries(&mut tx, &jobs[i].msg, &jobs[i].read).await?);
                i += 1;
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

    /// A batch (consecutive updates with one batch key) through its
    /// service in one go (`service::run_batch`), which records their ids
    /// too; then each one's replies.
    async fn batch_run(
        &self,
        tx: &mut impl Db,
        jobs: &[Submitted],
        batches: &[Option<service::Batched>],
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut run = Vec::with_capacity(jobs.len());
        for (job, batch) in jobs.iter().zip(batches) {
            if let Some(batch) = batch {
                run.push((&job.msg, batch));
            }
        }
        for (msg, _) in &run {
            self.fault(msg);
        }
        let outs = service::run_batch(&self.env, &mut *tx, &run).await?;
        let mut outcomes = Vec::with_capacity(outs.len());
        for ((msg, _), out) in run.iter().zip(outs) {
            let Some(out) = out else {
                outcomes.push(Outcome::Duplicate);
                continue;
            };
            let replies = out.write(&mut *tx, msg.at).await?;
            if out.wakes() {
                self.wake.store(true, Ordering::Relaxed);
            }
            crate::metrics::message_handled();
            outcomes.push(Outcome::Handled { replies });
        }
        Ok(outcomes)
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

    /// Handle one update in one transaction, tried as in a group (see
    /// [`Engine::tries`]). A database outage is returned, not waited out.
    #[tracing::instrument(skip_all, fields(platform = %msg.platform, chat = %msg.chat_id, user = %msg.sender_id, update = %msg.update_id))]
    pub async fn handle(&self, msg: &Incoming) -> Result<Outcome, StoreError> {
        let started = std::time::Instant::now();
        let mut read = self.read(msg);
        if service::download_for(&read.parsed, msg).is_some() {
            read.document = service::download(&self.env, msg).await?;
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
                if (replies > 0) | self.wake.swap(false, Ordering::Relaxed) {
                    self.outbox_ready.notify_waiters();
                }
                if service::batch_key(&self.env, msg, &read.parsed).is_some() {
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
        if service::download_for(&read.parsed, &msg).is_some() {
            read.document = service::download(&self.env, &msg).await?;
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
        if !updates::mark(&mut *tx, msg.platform, &msg.update_id, store::ms(msg.at)).await? {
            return Ok(Outcome::Duplicate);
        }
        self.fault(msg);
        let update = service::Update {
            msg,
            text: &read.text,
            parsed: &read.parsed,
            document: read.document.as_ref(),
        };
        let out = service::dispatch(&self.env, &mut *tx, update).await?;
        let replies = out.write(&mut *tx, msg.at).await?;
        if out.wakes() {
            self.wake.store(true, Ordering::Relaxed);
        }
        // A platform event about a chat is not a message.
        if msg.event.is_none() {
            crate::metrics::message_handled();
        }
        Ok(Outcome::Handled { replies })
    }
}

/// A batch's result with its panic caught: an outage stays one (the group
/// waits and is tried again whole); an error or a panic makes the batch
/// worth doing again one update at a time.
fn batch_result(
    run: std::thread::Result<Result<Vec<Outcome>, StoreError>>,
) -> Result<Vec<Outcome>, GroupError> {
    match run {
        Ok(Ok(outcomes)) => Ok(outcomes),
        Ok(Err(e)) if e.is_transient() => Err(GroupError::Store(e)),
        Ok(Err(e)) => Err(GroupError::Batch(e.to_string())),
        Err(panic) => Err(GroupError::Batch(panic_text(&*panic))),
    }
}

/// A batch key, compared.
fn batch_key(batch: &Option<service::Batched>) -> Option<&'static str> {
    batch.as_ref().map(service::Batched::key)
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
                    engine.handle_submitted(std::mem::take(&mut jobs)).await;
                    let _ = passed.send(());
                }
            }
        }
        engine.handle_submitted(jobs).await;
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
