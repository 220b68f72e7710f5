//! The scenarios: each sets up what it needs, runs, and returns its report.

use crate::api::{self, User};
use crate::stats::{micros, round1, round3, Errors, Report};
use crate::ws::{self, End};
use crate::Ctx;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

pub(crate) fn report(ctx: &Ctx, scenario: &'static str) -> Report {
    let mut target = ctx.api.base().to_owned();
    if let Some(a) = ctx.api.server_address() {
        target.push_str(&format!(" (X-Server-Address {a})"));
    }
    Report::new(scenario, &ctx.label, &target)
}

pub(crate) async fn accounts(ctx: &Ctx, wanted: usize) -> Result<Vec<User>, String> {
    let count = wanted.clamp(1, ctx.max_users);
    eprintln!(
        "ecto-load: signing in {count} accounts ({} at a time)",
        ctx.join_concurrency
    );
    let started = Instant::now();
    let users = api::users(
        &ctx.api,
        &ctx.prefix,
        count,
        ctx.join_concurrency,
        &ctx.errors,
        &ctx.tokens,
    )
    .await;
    eprintln!(
        "ecto-load: {} of {count} accounts ready in {:.1} s",
        users.len(),
        started.elapsed().as_secs_f64()
    );
    if users.is_empty() {
        return Err(format!(
            "no account could sign in; errors: {:?}",
            ctx.errors.snapshot()
        ));
    }
    Ok(users)
}

async fn channel(ctx: &Ctx) -> Result<String, String> {
    let (_, id) = api::channel(&ctx.api, &ctx.owner, &ctx.run, &ctx.errors, &ctx.tokens).await?;
    Ok(id)
}

/// User and system CPU time of a process in clock ticks, from /proc/<pid>/stat (fields 14, 15).
pub(crate) fn cpu_ticks(pid: &str) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it follow its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// Linux counts 100 clock ticks per second.
fn ticks_s(t: u64) -> f64 {
    t as f64 / 100.0
}

/// CPU time of this process and of the server (`--pid`) at the start of a measured phase.
pub(crate) struct CpuMark {
    client: Option<(u64, u64)>,
    server: Option<(u32, (u64, u64))>,
}

impl CpuMark {
    pub(crate) fn now(ctx: &Ctx) -> CpuMark {
        CpuMark {
            client: cpu_ticks("self"),
            server: ctx
                .pid
                .and_then(|p| cpu_ticks(&p.to_string()).map(|t| (p, t))),
        }
    }

    /// Adds the CPU seconds spent since the mark (the server's also split into user and
    /// system time); returns the server's total.
    pub(crate) fn report(&self, r: &mut Report) -> Option<f64> {
        if let (Some(a), Some(b)) = (self.client, cpu_ticks("self")) {
            let spent = (b.0 + b.1).saturating_sub(a.0 + a.1);
            r.result("client_cpu_s", round3(ticks_s(spent)));
        }
        let (pid, (user0, sys0)) = self.server?;
        let (user, sys) = cpu_ticks(&pid.to_string())?;
        let (user, sys) = (user.saturating_sub(user0), sys.saturating_sub(sys0));
        r.result("server_cpu_s", round3(ticks_s(user + sys)));
        r.result("server_cpu_user_s", round3(ticks_s(user)));
        r.result("server_cpu_sys_s", round3(ticks_s(sys)));
        Some(ticks_s(user + sys))
    }

    /// As [`CpuMark::report`], and the server's CPU time per unit of work in microseconds
    /// (`server_cpu_us_per_<unit>`).
    pub(crate) fn report_per(&self, r: &mut Report, units: u64, unit: &str) {
        if let Some(spent) = self.report(r) {
            if units > 0 {
                r.result(
                    &format!("server_cpu_us_per_{unit}"),
                    round3(spent * 1e6 / units as f64),
                );
            }
        }
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        round1(count as f64 / secs)
    } else {
        0.0
    }
}

/// `send-seq`: one client, `count` sequential sends.
pub async fn send_seq(ctx: &Ctx, count: usize) -> Result<Report, String> {
    let channel_id = channel(ctx).await?;
    let users = accounts(ctx, 1).await?;
    let token = &users[0].token;
    let mut latencies = Vec::with_capacity(count);
    let mut ok = 0u64;
    let cpu = CpuMark::now(ctx);
    let started = Instant::now();
    for i in 0..count {
        let nonce = format!("{}:{i}", ctx.run);
        let t = Instant::now();
        match api::send(
            &ctx.api,
            token,
            &channel_id,
            &format!("load {nonce}"),
            &nonce,
        )
        .await
        {
            Ok(()) => {
                ok += 1;
                latencies.push(micros(t.elapsed()));
            }
            Err(e) => ctx.errors.add(format!("messages.send {}", e.kind())),
        }
    }
    let elapsed = started.elapsed();
    let mut r = report(ctx, "send-seq");
    r.param("count", count);
    r.result("sent_ok", ok);
    r.result("failed", count as u64 - ok);
    r.result("elapsed_s", round3(elapsed.as_secs_f64()));
    r.result("msg_per_s", per_second(ok, elapsed));
    r.latency("send_latency", latencies);
    cpu.report_per(&mut r, ok, "send");
    r.errors(&ctx.errors);
    Ok(r)
}

/// `send-concurrent`: `clients` clients sending sequentially until the deadline or `count`
/// messages each.
pub async fn send_concurrent(
    ctx: &Ctx,
    clients: usize,
    duration: f64,
    count: Option<usize>,
) -> Result<Report, String> {
    let channel_id = Arc::new(channel(ctx).await?);
    let users = accounts(ctx, clients).await?;
    let cpu = CpuMark::now(ctx);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(duration.max(0.0));
    let mut tasks: Vec<JoinHandle<(u64, Vec<u32>)>> = Vec::with_capacity(clients);
    for c in 0..clients {
        let api = ctx.api.clone();
        let token = users[c % users.len()].token.clone();
        let channel_id = channel_id.clone();
        let errors = ctx.errors.clone();
        let run = ctx.run.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut latencies = Vec::new();
            let mut i = 0usize;
            loop {
                match count {
                    Some(n) if i >= n => break,
                    None if Instant::now() >= deadline => break,
                    _ => {}
                }
                let nonce = format!("{run}:{c}:{i}");
                i += 1;
                let t = Instant::now();
                match api::send(&api, &token, &channel_id, &format!("load {nonce}"), &nonce).await {
                    Ok(()) => {
                        ok += 1;
                        latencies.push(micros(t.elapsed()));
                    }
                    Err(e) => errors.add(format!("messages.send {}", e.kind())),
                }
            }
            (ok, latencies)
        }));
    }
    let mut ok = 0u64;
    let mut latencies = Vec::new();
    for t in tasks {
        match t.await {
            Ok((n, l)) => {
                ok += n;
                latencies.extend(l);
            }
            Err(_) => ctx.errors.add("client task failed"),
        }
    }
    let elapsed = started.elapsed();
    let mut r = report(ctx, "send-concurrent");
    r.param("clients", clients);
    r.param("accounts", users.len());
    match count {
        Some(n) => r.param("count_per_client", n),
        None => r.param("duration_s", duration),
    }
    r.result("sent_ok", ok);
    r.result(
        "failed",
        ctx.errors
            .snapshot()
            .iter()
            .filter(|(k, _)| k.starts_with("messages.send"))
            .map(|(_, v)| *v)
            .sum::<u64>(),
    );
    r.result("elapsed_s", round3(elapsed.as_secs_f64()));
    r.result("msg_per_s", per_second(ok, elapsed));
    r.latency("send_latency", latencies);
    cpu.report_per(&mut r, ok, "send");
    r.errors(&ctx.errors);
    Ok(r)
}

pub struct FanoutParams {
    pub subscribers: usize,
    pub rate: f64,
    pub duration: f64,
    pub senders: usize,
    pub sender_concurrency: usize,
    pub grace: f64,
    pub connect_concurrency: usize,
}

/// What one subscriber saw.
struct Seen {
    /// Deliveries per message index (saturating).
    counts: Vec<u8>,
    /// Send start → frame received, microseconds, first deliveries only.
    latencies: Vec<u32>,
    /// Microseconds since the run's base of the last delivery.
    last: u64,
    end: End,
}

/// Shared between the sender and every subscriber.
struct Clock {
    base: Instant,
    /// Send start of message i in microseconds since `base`, plus one (0: not started).
    starts: Vec<AtomicU64>,
    /// First deliveries seen by all subscribers together (for the early end of the grace).
    first_deliveries: AtomicU64,
}

impl Clock {
    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// The message index in a `message.create` frame of this run, from its nonce.
pub(crate) fn message_index(text: &str, needle: &str) -> Option<usize> {
    if !text.contains("\"message.create\"") {
        return None;
    }
    let at = text.find(needle)? + needle.len();
    let rest = &text[at..];
    let end = rest.find('"')?;
    rest[..end].parse().ok()
}

/// `fanout`: see the command's help.
pub async fn fanout(ctx: &Ctx, p: FanoutParams) -> Result<Report, String> {
    let channel_id = Arc::new(channel(ctx).await?);
    let users = accounts(ctx, p.subscribers.max(p.senders)).await?;
    let total = (p.rate * p.duration).round().max(0.0) as usize;
    let clock = Arc::new(Clock {
        base: Instant::now(),
        starts: (0..total).map(|_| AtomicU64::new(0)).collect(),
        first_deliveries: AtomicU64::new(0),
    });
    let needle = Arc::new(format!("\"nonce\":\"{}:", ctx.run));

    // Subscribers: identify, subscribe, then count every delivery until stopped.
    eprintln!(
        "ecto-load: opening {} subscriber sessions ({} at a time)",
        p.subscribers, p.connect_concurrency
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel::<bool>(p.subscribers.max(1));
    let gate = Arc::new(Semaphore::new(p.connect_concurrency));
    let mut subs: Vec<JoinHandle<Option<Seen>>> = Vec::with_capacity(p.subscribers);
    let connect_started = Instant::now();
    for i in 0..p.subscribers {
        let target = ctx.target.clone();
        let token = users[i % users.len()].token.clone();
        let channel_id = channel_id.clone();
        let errors = ctx.errors.clone();
        let clock = clock.clone();
        let needle = needle.clone();
        let stop = stop_rx.clone();
        let ready = ready_tx.clone();
        let gate = gate.clone();
        subs.push(tokio::spawn(async move {
            let session = ws::open_subscribed(
                &target,
                &token,
                &channel_id,
                gate,
                ready,
                &errors,
                "subscriber",
            )
            .await?;
            let mut counts = vec![0u8; total];
            let mut latencies = Vec::with_capacity(total);
            let mut last = 0u64;
            let end = ws::hold(session, stop, &errors, |text| {
                let Some(idx) = message_index(text, &needle) else {
                    return;
                };
                let now = clock.now();
                let Some(slot) = counts.get_mut(idx) else {
                    return;
                };
                *slot = slot.saturating_add(1);
                last = now;
                if *slot == 1 {
                    clock.first_deliveries.fetch_add(1, Ordering::Relaxed);
                    let start = clock.starts[idx].load(Ordering::Acquire);
                    if start > 0 {
                        latencies
                            .push(u32::try_from(now.saturating_sub(start - 1)).unwrap_or(u32::MAX));
                    }
                }
            })
            .await;
            Some(Seen {
                counts,
                latencies,
                last,
                end,
            })
        }));
    }
    drop(ready_tx);
    let mut subscribed = 0usize;
    while let Some(ok) = ready_rx.recv().await {
        if ok {
            subscribed += 1;
        }
    }
    let connect_elapsed = connect_started.elapsed();
    eprintln!(
        "ecto-load: {subscribed} of {} subscribed in {:.1} s; sending {total} messages at {} msg/s",
        p.subscribers,
        connect_elapsed.as_secs_f64(),
        p.rate
    );

    // Senders: open loop. Message i is due at start + i / rate; it waits only for a free slot
    // among `sender_concurrency` sends in flight.
    let senders: Vec<User> = users.iter().take(p.senders).cloned().collect();
    let slots = Arc::new(Semaphore::new(p.sender_concurrency));
    let sent_ok: Arc<Vec<AtomicBool>> =
        Arc::new((0..total).map(|_| AtomicBool::new(false)).collect());
    let send_latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total)));
    let mut sends: Vec<JoinHandle<()>> = Vec::with_capacity(total);
    let mut late = 0u64;
    let mut max_lag = Duration::ZERO;
    let cpu = CpuMark::now(ctx);
    let send_started = Instant::now();
    let first_send_us = clock.now();
    let mut last_start = send_started;
    for i in 0..total {
        let due = send_started + Duration::from_secs_f64(i as f64 / p.rate);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        last_start = Instant::now();
        let lag = last_start.saturating_duration_since(due);
        max_lag = max_lag.max(lag);
        if lag > Duration::from_millis(10) {
            late += 1;
        }
        let api = ctx.api.clone();
        let token = senders[i % senders.len()].token.clone();
        let channel_id = channel_id.clone();
        let errors = ctx.errors.clone();
        let clock = clock.clone();
        let sent_ok = sent_ok.clone();
        let send_latencies = send_latencies.clone();
        let nonce = format!("{}:{i}", ctx.run);
        sends.push(tokio::spawn(async move {
            let t = Instant::now();
            clock.starts[i].store(clock.now() + 1, Ordering::Release);
            match api::send(&api, &token, &channel_id, &format!("load {nonce}"), &nonce).await {
                Ok(()) => {
                    sent_ok[i].store(true, Ordering::Release);
                    send_latencies
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(micros(t.elapsed()));
                }
                Err(e) => errors.add(format!("messages.send {}", e.kind())),
            }
            drop(permit);
        }));
    }
    for s in sends {
        if s.await.is_err() {
            ctx.errors.add("send task failed");
        }
    }
    let send_elapsed = send_started.elapsed();
    let ok_count = sent_ok.iter().filter(|b| b.load(Ordering::Acquire)).count() as u64;
    let expected = ok_count * subscribed as u64;

    // Grace: wait for stragglers, or stop early once everything expected has arrived.
    let grace_end = Instant::now() + Duration::from_secs_f64(p.grace.max(0.0));
    while Instant::now() < grace_end && clock.first_deliveries.load(Ordering::Relaxed) < expected {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);

    let mut received = 0u64;
    let mut duplicated = 0u64;
    let mut for_failed_sends = 0u64;
    let mut lost_subscribers = 0u64;
    let mut last = first_send_us;
    let mut latencies: Vec<u32> = Vec::new();
    let mut per_sub_lost_max = 0u64;
    for h in subs {
        let Ok(Some(seen)) = h.await else { continue };
        if seen.end == End::Lost {
            lost_subscribers += 1;
        }
        last = last.max(seen.last);
        let mut lost_here = 0u64;
        for (idx, &c) in seen.counts.iter().enumerate() {
            let c = u64::from(c);
            if sent_ok[idx].load(Ordering::Acquire) {
                if c >= 1 {
                    received += 1;
                    duplicated += c - 1;
                } else {
                    lost_here += 1;
                }
            } else {
                for_failed_sends += c;
            }
        }
        per_sub_lost_max = per_sub_lost_max.max(lost_here);
        latencies.extend(seen.latencies);
    }
    let delivery_window = Duration::from_micros(last.saturating_sub(first_send_us));

    let mut r = report(ctx, "fanout");
    r.param("subscribers", p.subscribers);
    r.param("accounts", users.len());
    r.param("rate_msg_per_s", p.rate);
    r.param("duration_s", p.duration);
    r.param("senders", senders.len());
    r.param("sender_concurrency", p.sender_concurrency);
    r.param("grace_s", p.grace);
    r.result("subscribed", subscribed);
    r.result("subscribe_all_s", round3(connect_elapsed.as_secs_f64()));
    r.result("messages_planned", total);
    r.result("sent_ok", ok_count);
    r.result("send_failed", total as u64 - ok_count);
    // The rate sends were started at: message i is due at i / rate, so n sends on schedule
    // span exactly n / rate; a server that cannot keep up holds the senders' slots and
    // pushes the starts later. (Counting up to the last answer would add one send latency.)
    let start_window =
        last_start.saturating_duration_since(send_started) + Duration::from_secs_f64(1.0 / p.rate);
    r.result("achieved_send_rate", per_second(ok_count, start_window));
    r.result(
        "sends_answered_within_s",
        round3(send_elapsed.as_secs_f64()),
    );
    r.result("sends_started_late_10ms", late);
    r.result(
        "max_schedule_lag_ms",
        round3(max_lag.as_secs_f64() * 1000.0),
    );
    r.result("expected_deliveries", expected);
    r.result("received", received);
    r.result("lost", expected.saturating_sub(received));
    r.result("duplicated", duplicated);
    r.result("delivered_for_failed_sends", for_failed_sends);
    r.result("max_lost_one_subscriber", per_sub_lost_max);
    r.result("subscribers_closed_by_server", lost_subscribers);
    r.result("deliveries_per_s", per_second(received, delivery_window));
    r.latency("delivery_latency", latencies);
    let sl = std::mem::take(&mut *send_latencies.lock().unwrap_or_else(|e| e.into_inner()));
    r.latency("send_latency", sl);
    cpu.report_per(&mut r, received, "delivery");
    r.errors(&ctx.errors);
    Ok(r)
}

/// Sessions opened by `open_sessions`, held until `stop`.
struct Held {
    ready: usize,
    ready_latencies: Vec<u32>,
    open_all: Duration,
    handles: Vec<JoinHandle<End>>,
    lost: Arc<AtomicUsize>,
}

/// Opens `count` sessions, `concurrency` at a time, each identified with the next account;
/// returns once every one is ready or has failed. Ready sessions read and heartbeat until
/// `stop`.
async fn open_sessions(
    ctx: &Ctx,
    users: &[User],
    count: usize,
    concurrency: usize,
    stop: &watch::Receiver<bool>,
) -> Held {
    let gate = Arc::new(Semaphore::new(concurrency));
    let (tx, mut rx) = mpsc::channel::<Option<u32>>(count.max(1));
    let lost = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        let target = ctx.target.clone();
        let token = users[i % users.len()].token.clone();
        let errors: Arc<Errors> = ctx.errors.clone();
        let gate = gate.clone();
        let tx = tx.clone();
        let stop = stop.clone();
        let lost = lost.clone();
        handles.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            let opened = ws::identify(&target, &token).await;
            drop(permit);
            match opened {
                Ok(session) => {
                    let _ = tx.send(Some(micros(session.ready_after))).await;
                    drop(tx);
                    let end = ws::hold(session, stop, &errors, |_| {}).await;
                    if end == End::Lost {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    end
                }
                Err(e) => {
                    errors.add(e.kind());
                    let _ = tx.send(None).await;
                    End::Lost
                }
            }
        }));
    }
    drop(tx);
    let mut ready_latencies = Vec::with_capacity(count);
    let mut done = 0usize;
    while let Some(r) = rx.recv().await {
        done += 1;
        if let Some(l) = r {
            ready_latencies.push(l);
        }
        if done.is_multiple_of(1000) {
            eprintln!("ecto-load: {done} of {count} sessions opened or failed");
        }
    }
    Held {
        ready: ready_latencies.len(),
        ready_latencies,
        open_all: started.elapsed(),
        handles,
        lost,
    }
}

async fn close_all(stop: watch::Sender<bool>, held: Held) {
    let _ = stop.send(true);
    for h in held.handles {
        let _ = h.await;
    }
}

/// VmRSS of a process in KiB, from /proc/<pid>/status.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A `… kB` line of /proc/<pid>/status (`VmRSS:`, `RssAnon:`, `RssFile:`).
fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// How much of the RSS is the process's own memory (`RssAnon`: heap, stacks, relocated
/// data) and how much is mapped files (`RssFile`: mostly the executable's code, shared with
/// the page cache), in MiB.
fn rss_split(r: &mut Report, pid: Option<u32>, when: &str) {
    let Some(pid) = pid else { return };
    if let (Some(anon), Some(file)) = (status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:")) {
        r.result(
            &format!("server_rss_anon_{when}_mib"),
            round1(anon as f64 / 1024.0),
        );
        r.result(
            &format!("server_rss_file_{when}_mib"),
            round1(file as f64 / 1024.0),
        );
    }
}

/// `idle`: `sessions` identified, heartbeating sessions; the server's RSS before and after.
pub async fn idle(
    ctx: &Ctx,
    sessions: usize,
    concurrency: usize,
    settle: f64,
    hold: f64,
) -> Result<Report, String> {
    let users = accounts(ctx, sessions).await?;
    let pid = ctx.pid;
    let before = pid.and_then(rss_kib);
    if let (Some(p), None) = (pid, before) {
        return Err(format!(
            "cannot read VmRSS of process {p} from /proc/{p}/status"
        ));
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let cpu = CpuMark::now(ctx);
    let held = open_sessions(ctx, &users, sessions, concurrency, &stop_rx).await;
    eprintln!(
        "ecto-load: {} of {sessions} sessions ready in {:.1} s",
        held.ready,
        held.open_all.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs_f64(settle.max(0.0))).await;
    let after = pid.and_then(rss_kib);
    tokio::time::sleep(Duration::from_secs_f64(hold.max(0.0))).await;
    let lost = held.lost.load(Ordering::Relaxed);
    let mut r = report(ctx, "idle");
    r.param("sessions", sessions);
    r.param("accounts", users.len());
    r.param("concurrency", concurrency);
    r.param("settle_s", settle);
    r.param("hold_s", hold);
    r.result("ready", held.ready);
    r.result("failed", sessions - held.ready);
    r.result("closed_by_server_while_idle", lost);
    r.result("open_all_s", round3(held.open_all.as_secs_f64()));
    r.latency("connect_to_ready", held.ready_latencies.clone());
    if let (Some(b), Some(a)) = (before, after) {
        r.result("server_rss_before_mib", round1(b as f64 / 1024.0));
        r.result("server_rss_after_mib", round1(a as f64 / 1024.0));
        let per = if held.ready > 0 {
            round1(a.saturating_sub(b) as f64 / held.ready as f64)
        } else {
            0.0
        };
        r.result("server_kib_per_session", per);
    }
    cpu.report_per(&mut r, held.ready as u64, "session");
    close_all(stop_tx, held).await;
    r.errors(&ctx.errors);
    Ok(r)
}

/// `connect`: connect→ready latency of `sessions` sessions, `concurrency` at a time.
pub async fn connect(ctx: &Ctx, sessions: usize, concurrency: usize) -> Result<Report, String> {
    let users = accounts(ctx, sessions).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let cpu = CpuMark::now(ctx);
    let held = open_sessions(ctx, &users, sessions, concurrency, &stop_rx).await;
    let mut r = report(ctx, "connect");
    r.param("sessions", sessions);
    r.param("accounts", users.len());
    r.param("concurrency", concurrency);
    r.result("ready", held.ready);
    r.result("failed", sessions - held.ready);
    r.result("open_all_s", round3(held.open_all.as_secs_f64()));
    r.result("ready_per_s", per_second(held.ready as u64, held.open_all));
    r.latency("connect_to_ready", held.ready_latencies.clone());
    cpu.report_per(&mut r, held.ready as u64, "session");
    close_all(stop_tx, held).await;
    r.errors(&ctx.errors);
    Ok(r)
}

/// What `batch` runs.
pub struct BatchParams {
    pub calls: usize,
    pub clients: usize,
    pub rounds: usize,
    pub messages: usize,
    pub settle: f64,
}

/// `batch`: what large tRPC batches cost the server's memory, and whether it comes back.
pub async fn batch(ctx: &Ctx, p: BatchParams) -> Result<Report, String> {
    let channel_id = channel(ctx).await?;
    let users = accounts(ctx, p.clients).await?;
    let long = "x".repeat(4000);
    for i in 0..p.messages {
        let nonce = format!("{}:b{i}", ctx.run);
        if let Err(e) = api::send(&ctx.api, &users[0].token, &channel_id, &long, &nonce).await {
            ctx.errors.add(format!("setup: messages.send {}", e.kind()));
        }
    }
    let paths = vec!["messages.list"; p.calls].join(",");
    let inputs: serde_json::Map<String, serde_json::Value> = (0..p.calls)
        .map(|i| {
            (
                i.to_string(),
                serde_json::json!({ "channel_id": channel_id, "limit": 100 }),
            )
        })
        .collect();
    let query = serde_json::Value::Object(inputs).to_string();
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let path = Arc::new(format!("/trpc/{paths}?batch=1&input={encoded}"));
    let peak = PeakRss::start(ctx.pid);
    let cpu = CpuMark::now(ctx);
    let started = Instant::now();
    let statuses = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<u16, u64>::new(),
    ));
    let largest = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for c in 0..p.clients {
        let (api, token, path) = (
            ctx.api.clone(),
            users[c % users.len()].token.clone(),
            path.clone(),
        );
        let (statuses, largest, errors) = (statuses.clone(), largest.clone(), ctx.errors.clone());
        let rounds = p.rounds;
        tasks.push(tokio::spawn(async move {
            for _ in 0..rounds {
                match api.get_raw(&path, &token).await {
                    Ok((status, len)) => {
                        *statuses
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(status)
                            .or_default() += 1;
                        largest.fetch_max(len, Ordering::Relaxed);
                    }
                    Err(e) => errors.add(format!("batch {}", e.kind())),
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed();
    let mut r = report(ctx, "batch");
    cpu.report(&mut r);
    tokio::time::sleep(Duration::from_secs_f64(p.settle.max(0.0))).await;
    let (before, peak) = peak.stop().await;
    let after = ctx.pid.and_then(rss_kib);
    r.param("calls_per_batch", p.calls);
    r.param("clients", p.clients);
    r.param("rounds", p.rounds);
    r.param("messages", p.messages);
    r.param("settle_s", p.settle);
    r.result("elapsed_s", round3(elapsed.as_secs_f64()));
    let statuses = statuses.lock().unwrap_or_else(|e| e.into_inner()).clone();
    r.result(
        "statuses",
        serde_json::to_value(
            statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
        .unwrap_or_default(),
    );
    r.result(
        "largest_response_kib",
        round1(largest.load(Ordering::Relaxed) as f64 / 1024.0),
    );
    rss_rows(&mut r, before, peak, after);
    r.errors(&ctx.errors);
    Ok(r)
}

/// The server's VmRSS (KiB) sampled every 20 ms from `start` to `stop`, for its peak.
struct PeakRss {
    before: Option<u64>,
    peak: Arc<AtomicU64>,
    sampling: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl PeakRss {
    fn start(pid: Option<u32>) -> PeakRss {
        let before = pid.and_then(rss_kib);
        let peak = Arc::new(AtomicU64::new(before.unwrap_or(0)));
        let sampling = Arc::new(AtomicBool::new(true));
        let task = pid.map(|pid| {
            let (peak, sampling) = (peak.clone(), sampling.clone());
            tokio::spawn(async move {
                while sampling.load(Ordering::Relaxed) {
                    if let Some(kib) = rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        });
        PeakRss {
            before,
            peak,
            sampling,
            task,
        }
    }

    /// The RSS at the start and the peak since.
    async fn stop(self) -> (Option<u64>, u64) {
        self.sampling.store(false, Ordering::Relaxed);
        if let Some(t) = self.task {
            let _ = t.await;
        }
        (self.before, self.peak.load(Ordering::Relaxed))
    }
}

fn rss_rows(r: &mut Report, before: Option<u64>, peak: u64, after: Option<u64>) {
    if let (Some(b), Some(a)) = (before, after) {
        r.result("server_rss_before_mib", round1(b as f64 / 1024.0));
        r.result("server_rss_peak_mib", round1(peak as f64 / 1024.0));
        r.result("server_rss_after_mib", round1(a as f64 / 1024.0));
    }
}

/// `signin-burst`: `count` new accounts registered at once (each a password hash on the
/// server); the server's RSS before, at its peak, and `settle` seconds after the burst.
pub async fn signin_burst(ctx: &Ctx, count: usize, settle: f64) -> Result<Report, String> {
    if ctx.pid.is_none() {
        return Err("signin-burst needs --pid".into());
    }
    let mut r = report(ctx, "signin-burst");
    rss_split(&mut r, ctx.pid, "before");
    let peak = PeakRss::start(ctx.pid);
    let cpu = CpuMark::now(ctx);
    let started = Instant::now();
    // Fresh names and no token cache: every join registers, so every one hashes a password.
    let fresh: api::Tokens = Default::default();
    let prefix = format!("{}-{}", ctx.prefix, ctx.run);
    let users = api::users(&ctx.api, &prefix, count, count, &ctx.errors, &fresh).await;
    let elapsed = started.elapsed();
    cpu.report_per(&mut r, users.len() as u64, "signin");
    tokio::time::sleep(Duration::from_secs_f64(settle.max(0.0))).await;
    let (before, peak) = peak.stop().await;
    let after = ctx.pid.and_then(rss_kib);
    rss_split(&mut r, ctx.pid, "after");
    r.param("count", count);
    r.param("settle_s", settle);
    r.result("signed_in", users.len());
    r.result("failed", count - users.len());
    r.result("burst_s", round3(elapsed.as_secs_f64()));
    rss_rows(&mut r, before, peak, after);
    r.errors(&ctx.errors);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::message_index;

    #[test]
    fn reads_this_process_cpu_time() {
        assert!(super::cpu_ticks("self").is_some());
    }

    #[test]
    fn finds_the_index_in_a_message_create_frame() {
        let needle = "\"nonce\":\"abc:";
        let frame =
            r#"{"event":"message.create","data":{"content":"load abc:7","nonce":"abc:7"},"seq":3}"#;
        assert_eq!(message_index(frame, needle), Some(7));
        let other = r#"{"event":"message.create","data":{"nonce":"xyz:7"},"seq":3}"#;
        assert_eq!(message_index(other, needle), None);
        let presence = r#"{"event":"presence.update","data":{},"seq":1}"#;
        assert_eq!(message_index(presence, needle), None);
    }
}
