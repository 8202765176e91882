//! `tuanbot bench claims`: a claim rush through the real engine (parse,
//! service, store, outbox) via [`Engine::submit`] (group commit).
//!
//! `orgs × users` simulated people, each bound to an org, all in one group,
//! each sending `认领 N` for random wishes, so most claims collide on the
//! same wishes and quotas run out. Two ways to load the engine:
//!
//! - closed loop (default): each user sends its next claim as soon as the
//!   last one is answered. This measures the most claims/s the engine can
//!   take; the latency is then queueing by construction (Little's law: 440
//!   users at 30,000/s wait 15 ms on average, whatever the engine does).
//! - open loop (`--rate R`): claims arrive on a fixed schedule, R per second
//!   across all users, whether or not earlier ones were answered, as messages
//!   arrive from a group. Latency is measured from each claim's scheduled
//!   arrival, so a stalled engine or a late sender counts against it (no
//!   coordinated omission). This is the latency a claimer sees at that load.
//!
//! Afterwards a query checks that no wish was claimed twice and no org holds
//! more than its quota.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::chat::{Capabilities, Incoming, Outgoing};
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::domain::{ChatKind, OrgKind, Platform};
use crate::engine::{Engine, Outcome};
use crate::store::wishes::{self as db, NewWish};
use crate::store::{self, Backend, Store, orgs, outbox, people};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub wishes: usize,
    pub orgs: usize,
    pub users: usize,
    /// Claim messages each user sends.
    pub claims_per_user: usize,
    /// Per-org quota; default: a fair share plus a little.
    pub quota: Option<i64>,
    pub sync: String,
    /// Claims per second offered on a fixed schedule (open loop); 0: each
    /// user claims again as soon as answered (closed loop).
    pub rate: u64,
    /// Append the update id of every claim answered (so committed) to this
    /// file, one per line, as the answers come: what a crash test checks
    /// the database against.
    pub acks: Option<std::path::PathBuf>,
}

/// Where answered claims are written, if asked (see [`Options::acks`]).
struct Acks(Option<std::sync::Mutex<std::fs::File>>);

impl Acks {
    fn open(opts: &Options) -> anyhow::Result<Acks> {
        Ok(Acks(match &opts.acks {
            Some(path) => Some(std::sync::Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        }))
    }

    /// One answered claim; written at once (a write per line, no buffer),
    /// so a killed process leaves every line it acknowledged.
    fn ack(&self, seq: u64) {
        use std::io::Write;
        if let Some(f) = &self.0 {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = f.write_all(format!("{seq}\n").as_bytes());
        }
    }
}

/// The printed result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub claims_attempted: usize,
    pub claims_ok: i64,
    pub double_claims: i64,
    pub quota_violations: i64,
    pub throughput_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub backend: &'static str,
    pub sync: String,
    pub users: usize,
    /// Offered claims/s of an open-loop run; 0 for a closed loop.
    pub rate_per_s: u64,
    pub errors: usize,
    /// Share of the machine's CPU time the hypervisor took for others
    /// during the run (Linux `/proc/stat`; `null` elsewhere): latency
    /// figures from a run with much steal say more about the host than
    /// about tuanbot.
    pub cpu_steal_pct: Option<f64>,
    /// The writer's group commits during the run, those that took over
    /// 10 ms, and the slowest (since the process started: in the command,
    /// the run). On SQLite with `synchronous=full` a commit is mostly the
    /// disk's flush: a claim cannot be answered before it, so a run whose
    /// slow commits add up to more than 1 % of its time cannot have a p99
    /// under their length, whatever the engine does.
    pub commits: u64,
    pub commits_over_10ms: u64,
    pub slowest_commit_ms: f64,
}

/// Total and stolen CPU time so far, from the first line of `/proc/stat`.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let steal = *fields.get(7)?;
    Some((fields.iter().take(8).sum(), steal))
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Run the benchmark on an empty, migrated database at `url`.
pub async fn run(url: &str, opts: &Options) -> anyhow::Result<Report> {
    let store = Store::open(url, &opts.sync).await?;
    let settings = Settings {
        database_url: url.to_string(),
        sqlite_synchronous: opts.sync.clone(),
        ..Settings::default()
    };
    let engine = Arc::new(Engine::new(store.clone(), settings, Arc::new(SystemClock))?);
    engine.set_capabilities(
        Platform::Console,
        Capabilities {
            edit: true,
            buttons: true,
            max_text_chars: 4096,
        },
    );
    let quota = opts
        .quota
        .unwrap_or((opts.wishes / opts.orgs.max(1)) as i64 + 2);
    let batch_id = setup(&store, opts, quota).await?;

    let cpu_before = cpu_times();
    let commits_before = crate::metrics::snapshot().commits;
    let started = Instant::now();
    let acks = Arc::new(Acks::open(opts)?);
    let (mut lat, errors) = if opts.rate > 0 {
        open_loop(&engine, opts, &acks).await?
    } else {
        closed_loop(&engine, opts, &acks).await?
    };
    let elapsed = started.elapsed().as_secs_f64();
    let commits = crate::metrics::snapshot().commits;
    let cpu_steal_pct = match (cpu_before, cpu_times()) {
        (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => {
            Some((1000.0 * (s1 - s0) as f64 / (t1 - t0) as f64).round() / 10.0)
        }
        _ => None,
    };
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let mut conn = store.conn().await?;
    let (double, over) = db::violations(&mut conn, batch_id).await?;
    let ok = crate::store::audit::count_action(&mut conn, "wish.claim").await?;
    drop(conn);
    let report = Report {
        claims_attempted: lat.len(),
        claims_ok: ok,
        double_claims: double,
        quota_violations: over,
        throughput_per_s: (lat.len() as f64 / elapsed).round(),
        p50_ms: (pct(0.50) * 100.0).round() / 100.0,
        p99_ms: (pct(0.99) * 100.0).round() / 100.0,
        p999_ms: (pct(0.999) * 100.0).round() / 100.0,
        max_ms: (lat.last().copied().unwrap_or(0.0) * 100.0).round() / 100.0,
        backend: store.backend().as_str(),
        sync: match store.backend() {
            Backend::Sqlite => opts.sync.clone(),
            Backend::Postgres => "n/a".into(),
        },
        users: opts.orgs * opts.users,
        rate_per_s: opts.rate,
        errors,
        cpu_steal_pct,
        commits: commits.count - commits_before.count,
        commits_over_10ms: commits.over(0.01).unwrap_or(0) - commits_before.over(0.01).unwrap_or(0),
        slowest_commit_ms: (commits.max_seconds * 100_000.0).round() / 100.0,
    };
    drop(engine);
    store.close().await;
    Ok(report)
}

/// The claim message user `(o, u)` sends, the `seq`-th to arrive. Its
/// update id is `seq`, as a platform numbers the updates it delivers
/// (Telegram's `update_id`, QQ's message ids), so the ids recorded for
/// deduplication arrive in increasing order as in a real group.
fn claim_message(o: usize, u: usize, seq: u64, wish: usize) -> Incoming {
    let user = format!("u{o}_{u}");
    Incoming::text(
        Platform::Console,
        seq.to_string(),
        "bench",
        ChatKind::Group,
        user,
        format!("认领 {wish}"),
        chrono::Utc::now(),
    )
}

fn user_rng(o: usize, u: usize) -> Rng {
    Rng(0x9E37_79B9_7F4A_7C15 ^ ((o * 1000 + u) as u64 + 1))
}

/// Every user claims, waits for the answer, claims again. Returns the
/// latencies in ms and the number of failed claims.
async fn closed_loop(
    engine: &Arc<Engine>,
    opts: &Options,
    acks: &Arc<Acks>,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let arrivals = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for o in 0..opts.orgs {
        for u in 0..opts.users {
            let (engine, arrivals, acks) = (engine.clone(), arrivals.clone(), acks.clone());
            let (wishes, n) = (opts.wishes, opts.claims_per_user);
            tasks.push(tokio::spawn(async move {
                let mut rng = user_rng(o, u);
                let mut lat = Vec::with_capacity(n);
                let mut errors = 0;
                for _ in 0..n {
                    let seq = arrivals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let msg = claim_message(o, u, seq, rng.below(wishes) + 1);
                    let t = Instant::now();
                    if matches!(engine.submit(msg).await, Ok(Outcome::Handled { .. })) {
                        acks.ack(seq);
                    } else {
                        errors += 1;
                    }
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                (lat, errors)
            }));
        }
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    Ok((lat, errors))
}

/// Claims arrive on a fixed schedule, `opts.rate` per second, the users
/// taking turns; each claim's latency runs from its scheduled arrival to its
/// answer. The arrivals come from a thread of their own, as from an
/// adapter's socket, so they keep to the schedule to well under a
/// millisecond (a tokio timer would add up to 1 ms). When the thread wakes
/// late it sends every claim that is due at once, as a socket read returns
/// every frame that has arrived, and the lateness counts in the latency.
/// Returns the latencies in ms and the number of failed claims.
async fn open_loop(
    engine: &Arc<Engine>,
    opts: &Options,
    acks: &Arc<Acks>,
) -> anyhow::Result<(Vec<f64>, usize)> {
    use std::time::Duration;
    let users = opts.orgs * opts.users;
    let total = users * opts.claims_per_user;
    let (results, mut answers) = tokio::sync::mpsc::unbounded_channel::<(f64, bool, u64)>();
    let runtime = tokio::runtime::Handle::current();
    let (engine, opts) = (engine.clone(), opts.clone());
    let sender = std::thread::spawn(move || {
        let _in_runtime = runtime.enter();
        let mut rngs: Vec<Rng> = (0..users)
            .map(|k| user_rng(k / opts.users, k % opts.users))
            .collect();
        let interval = 1.0 / opts.rate as f64;
        let start = Instant::now();
        let due = |k: usize| start + Duration::from_secs_f64(k as f64 * interval);
        let mut k = 0;
        while k < total {
            let woke = Instant::now();
            let mut sent = Vec::new();
            while k < total && due(k) <= woke {
                let user = k % users;
                let (o, u) = (user / opts.users, user % opts.users);
                let wish = rngs[user].below(opts.wishes) + 1;
                let answer = engine.submit(claim_message(o, u, k as u64, wish));
                sent.push((due(k), k as u64, answer));
                k += 1;
            }
            if !sent.is_empty() {
                let results = results.clone();
                runtime.spawn(async move {
                    for (due, seq, answer) in sent {
                        let ok = matches!(answer.await, Ok(Outcome::Handled { .. }));
                        let _ = results.send((due.elapsed().as_secs_f64() * 1000.0, ok, seq));
                    }
                });
            }
            if k < total {
                let now = Instant::now();
                if due(k) > now {
                    std::thread::sleep(due(k) - now);
                }
            }
        }
        drop(results);
    });
    let mut lat = Vec::with_capacity(total);
    let mut errors = 0;
    while let Some((ms, ok, seq)) = answers.recv().await {
        lat.push(ms);
        if ok {
            acks.ack(seq);
        } else {
            errors += 1;
        }
    }
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("the claim sender thread panicked"))?;
    Ok((lat, errors))
}

/// Orgs, people bound to them, and a published batch with a board.
async fn setup(store: &Store, opts: &Options, quota: i64) -> anyhow::Result<i64> {
    let now = store::ms(chrono::Utc::now());
    let mut tx = store.begin().await?;
    for o in 0..opts.orgs {
        let name = format!("测试组织{o}");
        let (org_id, _) = orgs::upsert(
            &mut tx,
            &orgs::NewOrg {
                full_name: &name,
                short_name: &name,
                kind: OrgKind::School,
                parent_id: None,
                secretary: None,
            },
            now,
        )
        .await?;
        for u in 0..opts.users {
            let user = format!("u{o}_{u}");
            let (p, _) = people::upsert_seen(&mut tx, Platform::Console, &user, &user, now).await?;
            people::set_org(&mut tx, p.id, Some(org_id), now).await?;
        }
    }
    let wishes: Vec<NewWish> = (0..opts.wishes)
        .map(|i| NewWish {
            school: format!("第{}小学", i % 24 + 1),
            grade: "三年级".into(),
            child: "测试".into(),
            item: "新华字典1本".into(),
            price_yuan: Some(25),
            note: None,
        })
        .collect();
    let batch = db::create_batch(&mut tx, "bench", &wishes, now).await?;
    db::set_published(&mut tx, batch, Some(quota), "console", "bench", now).await?;
    let board = Outgoing::new(Platform::Console, "bench", "board");
    let id = outbox::enqueue(&mut tx, &board, now, Some("wishes:board:bench"), now).await?;
    db::set_board(&mut tx, batch, Some(id), now).await?;
    tx.commit().await?;
    Ok(batch)
}

/// Run on a fresh database: a temporary SQLite file when `url` is `None`, a
/// new schema (dropped afterwards) for a PostgreSQL URL, else the given
/// SQLite file.
pub async fn run_fresh(url: Option<&str>, opts: &Options) -> anyhow::Result<Report> {
    match url {
        None => {
            let dir = std::env::temp_dir().join(format!(
                "tuanbot-bench-{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_millis()
            ));
            std::fs::create_dir_all(&dir)?;
            let url = format!("sqlite://{}", dir.join("bench.db").display());
            let result = run(&url, opts).await;
            let _ = std::fs::remove_dir_all(&dir);
            result
        }
        Some(u) if u.starts_with("postgres") => {
            use sqlx::Connection;
            let schema = format!(
                "bench_{}_{}",
                std::process::id(),
                chrono::Utc::now().timestamp_millis()
            );
            let mut admin = sqlx::PgConnection::connect(u).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut admin)
                .await?;
            let sep = if u.contains('?') { '&' } else { '?' };
            let url = format!("{u}{sep}options[search_path]={schema}");
            let result = run(&url, opts).await;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut admin)
                .await?;
            result
        }
        Some(u) => run(u, opts).await,
    }
}
