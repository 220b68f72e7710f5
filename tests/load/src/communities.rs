//! `communities`: many community servers on a managed deployment of two instances, traffic in
//! a few of them. Each server gets an owner and a channel; sessions are spread over the
//! servers, the busy servers' sessions on the first instance (`--url`), every other server's
//! alternately on both. Both instances' CPU is read over an idle phase and over the traffic
//! phase: an instance's CPU should follow the traffic of the communities it holds sockets of,
//! so the second instance, which holds none of the busy ones, should not move. Redis's command
//! counts (`INFO commandstats`) over both phases give its operations per message and per
//! delivery.

use crate::api::{self, Api, User};
use crate::scenarios::report;
use crate::stats::{round3, Report};
use crate::ws::{self, End};
use crate::Ctx;
use futures_util::stream::{self, StreamExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Semaphore};

pub struct CommunitiesParams {
    pub servers: usize,
    pub sessions: usize,
    pub busy: usize,
    pub rate: f64,
    pub duration: f64,
    pub other_url: String,
    pub other_pid: Option<u32>,
    pub managed_key: String,
    pub redis_url: Option<String>,
    pub connect_concurrency: usize,
    pub grace: f64,
}

/// One community of the run: its address, owner and channel.
struct Community {
    address: String,
    owner: User,
    channel: String,
}

/// Redis's `calls` per command, from `INFO commandstats`, summed over the nodes `urls` names
/// (a cluster's masters, comma-separated).
async fn redis_calls(urls: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut all = BTreeMap::new();
    for url in urls.split(',') {
        for (cmd, n) in node_calls(url.trim()).await? {
            *all.entry(cmd).or_insert(0) += n;
        }
    }
    Ok(all)
}

/// One node's `INFO commandstats`, over a plain connection.
async fn node_calls(url: &str) -> Result<BTreeMap<String, u64>, String> {
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379");
    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("Redis at {addr}: {e}"))?;
    conn.write_all(b"INFO commandstats\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = conn.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        // `$<len>\r\n<len bytes>\r\n`
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let len: usize = std::str::from_utf8(&buf[1..end])
                .ok()
                .and_then(|l| l.parse().ok())
                .ok_or("unexpected INFO answer")?;
            if buf.len() >= end + 2 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf);
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (cmd, rest) = l.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((cmd.to_owned(), calls))
        })
        .collect())
}

/// Commands counted between two `INFO commandstats` readings (INFO itself left out).
fn calls_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(cmd, _)| cmd.as_str() != "info")
        .map(|(cmd, n)| {
            (
                cmd.clone(),
                n.saturating_sub(*before.get(cmd).unwrap_or(&0)),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Both instances' CPU ticks (user + system), when their pids are known.
fn cpu_pair(a: Option<u32>, b: Option<u32>) -> (Option<u64>, Option<u64>) {
    let ticks = |pid: Option<u32>| {
        pid.and_then(|p| crate::scenarios::cpu_ticks(&p.to_string()))
            .map(|(u, s)| u + s)
    };
    (ticks(a), ticks(b))
}

/// Sets up `servers` communities (provisioned, with an owner and a channel each), `concurrency`
/// at a time; failures are counted and left out.
async fn communities(ctx: &Ctx, p: &CommunitiesParams) -> Vec<Community> {
    let base = ctx.api.base().to_owned();
    let made: Vec<Option<(usize, Community)>> = stream::iter(0..p.servers)
        .map(|i| {
            let api = ctx.api.clone();
            let base = base.clone();
            let key = p.managed_key.clone();
            let run = ctx.run.clone();
            let errors = ctx.errors.clone();
            let tokens = ctx.tokens.clone();
            async move {
                let address = format!("c{i}-{run}.load.ecto");
                if let Err(e) = api.provision(&key, &address, &format!("Load {i}")).await {
                    errors.add(format!("setup: provision {}", e.kind()));
                    return None;
                }
                let here = api.at(&base, &address);
                let owner = format!("o{run}-{i}:owner-{run}-password");
                match api::channel(&here, &owner, &run, &errors, &tokens).await {
                    Ok((owner, channel)) => Some((
                        i,
                        Community {
                            address,
                            owner,
                            channel,
                        },
                    )),
                    Err(e) => {
                        errors.add(format!("setup: {e}"));
                        None
                    }
                }
            }
        })
        .buffer_unordered(ctx.join_concurrency)
        .collect()
        .await;
    let mut made: Vec<(usize, Community)> = made.into_iter().flatten().collect();
    made.sort_by_key(|(i, _)| *i);
    made.into_iter().map(|(_, c)| c).collect()
}

/// What one held session saw of the busy communities' messages.
struct Seen {
    /// Deliveries per message index.
    counts: Vec<u8>,
    latencies: Vec<u32>,
    end: End,
}

pub async fn run(ctx: &Ctx, p: CommunitiesParams) -> Result<Report, String> {
    let started = Instant::now();
    eprintln!("ecto-load: setting up {} communities", p.servers);
    let servers = communities(ctx, &p).await;
    if servers.len() < p.busy.max(1) {
        return Err(format!(
            "only {} communities could be set up; errors: {:?}",
            servers.len(),
            ctx.errors.snapshot()
        ));
    }
    eprintln!(
        "ecto-load: {} communities ready in {:.1} s",
        servers.len(),
        started.elapsed().as_secs_f64()
    );
    let busy = p.busy.max(1);
    let total = (p.rate * p.duration).round().max(0.0) as usize;
    let base = Instant::now();
    let starts: Arc<Vec<std::sync::atomic::AtomicU64>> =
        Arc::new((0..total).map(|_| Default::default()).collect());
    let needle = Arc::new(format!("\"nonce\":\"{}:", ctx.run));
    let urls = [ctx.api.ws_url(), {
        let other = Api::new(&p.other_url, None, 1, Duration::from_secs(5))?;
        other.ws_url()
    }];

    // Sessions: session j belongs to community j % servers; busy communities' sessions are on
    // the first instance, the others' alternately on both.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel::<bool>(p.sessions.max(1));
    let gate = Arc::new(Semaphore::new(p.connect_concurrency.max(1)));
    let mut held = Vec::with_capacity(p.sessions);
    let mut on_instance = [0usize; 2];
    let mut busy_sessions = vec![0u64; busy];
    for j in 0..p.sessions {
        let c = j % servers.len();
        let instance = if c < busy { 0 } else { (j / servers.len()) % 2 };
        on_instance[instance] += 1;
        if c < busy {
            busy_sessions[c] += 1;
        }
        let community = &servers[c];
        let target = ws::Target {
            url: urls[instance].clone(),
            server_address: Some(community.address.clone()),
            timeout: ctx.target.timeout,
        };
        let (token, channel) = (community.owner.token.clone(), community.channel.clone());
        let (errors, stop, ready, gate) = (
            ctx.errors.clone(),
            stop_rx.clone(),
            ready_tx.clone(),
            gate.clone(),
        );
        let (starts, needle) = (starts.clone(), needle.clone());
        held.push(tokio::spawn(async move {
            let session =
                ws::open_subscribed(&target, &token, &channel, gate, ready, &errors, "session")
                    .await?;
            let mut counts = vec![0u8; if c < busy { total } else { 0 }];
            let mut latencies = Vec::new();
            let end = ws::hold(session, stop, &errors, |text| {
                let Some(idx) = crate::scenarios::message_index(text, &needle) else {
                    return;
                };
                let Some(slot) = counts.get_mut(idx) else {
                    return;
                };
                *slot = slot.saturating_add(1);
                if *slot == 1 {
                    let start = starts[idx].load(Ordering::Acquire);
                    let now = base.elapsed().as_micros() as u64;
                    if start > 0 {
                        latencies
                            .push(u32::try_from(now.saturating_sub(start - 1)).unwrap_or(u32::MAX));
                    }
                }
            })
            .await;
            Some((
                c,
                Seen {
                    counts,
                    latencies,
                    end,
                },
            ))
        }));
    }
    drop(ready_tx);
    let mut opened = 0usize;
    while let Some(ok) = ready_rx.recv().await {
        opened += usize::from(ok);
    }
    eprintln!(
        "ecto-load: {opened} of {} sessions ready ({} on the first instance, {} on the second)",
        p.sessions, on_instance[0], on_instance[1]
    );

    // Idle phase: both instances hold every session, nobody sends.
    let phase = Duration::from_secs_f64(p.duration.max(1.0));
    let redis = match &p.redis_url {
        Some(url) => Some(redis_calls(url).await?),
        None => None,
    };
    let idle_start = cpu_pair(ctx.pid, p.other_pid);
    tokio::time::sleep(phase).await;
    let idle_end = cpu_pair(ctx.pid, p.other_pid);
    let redis_idle = match &p.redis_url {
        Some(url) => Some(redis_calls(url).await?),
        None => None,
    };

    // Traffic phase: `rate` messages a second to the busy communities, round-robin, through
    // the first instance.
    let sent_ok: Arc<Vec<AtomicBool>> =
        Arc::new((0..total).map(|_| AtomicBool::new(false)).collect());
    let slots = Arc::new(Semaphore::new(64));
    let traffic_start = cpu_pair(ctx.pid, p.other_pid);
    let send_started = Instant::now();
    let mut sends = Vec::with_capacity(total);
    for i in 0..total {
        let due = send_started + Duration::from_secs_f64(i as f64 / p.rate.max(0.001));
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let community = &servers[i % busy];
        let api = ctx.api.at(ctx.api.base(), &community.address);
        let (token, channel) = (community.owner.token.clone(), community.channel.clone());
        let (errors, sent_ok, starts) = (ctx.errors.clone(), sent_ok.clone(), starts.clone());
        let nonce = format!("{}:{i}", ctx.run);
        sends.push(tokio::spawn(async move {
            starts[i].store(base.elapsed().as_micros() as u64 + 1, Ordering::Release);
            match api::send(&api, &token, &channel, &format!("load {nonce}"), &nonce).await {
                Ok(()) => sent_ok[i].store(true, Ordering::Release),
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
    tokio::time::sleep(Duration::from_secs_f64(p.grace.max(0.0))).await;
    let traffic_end = cpu_pair(ctx.pid, p.other_pid);
    let traffic_elapsed = send_started.elapsed();
    let redis_traffic = match &p.redis_url {
        Some(url) => Some(redis_calls(url).await?),
        None => None,
    };
    let _ = stop_tx.send(true);

    let mut expected = 0u64;
    for (i, ok) in sent_ok.iter().enumerate() {
        if ok.load(Ordering::Acquire) {
            expected += busy_sessions[i % busy];
        }
    }
    let (mut received, mut duplicated, mut closed) = (0u64, 0u64, 0u64);
    let mut latencies = Vec::new();
    for h in held {
        let Ok(Some((c, seen))) = h.await else {
            continue;
        };
        if seen.end == End::Lost {
            closed += 1;
        }
        if c >= busy {
            continue;
        }
        for (idx, &n) in seen.counts.iter().enumerate() {
            if sent_ok[idx].load(Ordering::Acquire) && n >= 1 {
                received += 1;
                duplicated += u64::from(n) - 1;
            }
        }
        latencies.extend(seen.latencies);
    }
    let sent = sent_ok.iter().filter(|b| b.load(Ordering::Acquire)).count() as u64;

    let mut r = report(ctx, "communities");
    r.param("servers", p.servers);
    r.param("sessions", p.sessions);
    r.param("busy_servers", busy);
    r.param("rate_msg_per_s", p.rate);
    r.param("duration_s", p.duration);
    r.param("second_instance", p.other_url.clone());
    r.result("communities_ready", servers.len());
    r.result("sessions_ready", opened);
    r.result("sessions_first_instance", on_instance[0]);
    r.result("sessions_second_instance", on_instance[1]);
    r.result("busy_sessions", busy_sessions.iter().sum::<u64>());
    r.result(
        "setup_s",
        round3(base.duration_since(started).as_secs_f64()),
    );
    r.result("sent_ok", sent);
    r.result("expected_deliveries", expected);
    r.result("received", received);
    r.result("lost", expected.saturating_sub(received));
    r.result("duplicated", duplicated);
    r.result("sessions_closed_by_server", closed);
    r.latency("delivery_latency", latencies);
    let secs = |ticks: u64| ticks as f64 / 100.0;
    for (name, idle, traffic) in [
        (
            "first",
            (idle_start.0, idle_end.0),
            (traffic_start.0, traffic_end.0),
        ),
        (
            "second",
            (idle_start.1, idle_end.1),
            (traffic_start.1, traffic_end.1),
        ),
    ] {
        let (Some(i0), Some(i1), Some(t0), Some(t1)) = (idle.0, idle.1, traffic.0, traffic.1)
        else {
            continue;
        };
        let idle_s = secs(i1.saturating_sub(i0));
        let traffic_s = secs(t1.saturating_sub(t0));
        // The idle phase's rate of CPU, over the traffic phase's length: what the instance
        // would have spent anyway.
        let baseline = idle_s * traffic_elapsed.as_secs_f64() / phase.as_secs_f64();
        let extra = (traffic_s - baseline).max(0.0);
        r.result(&format!("{name}_instance_cpu_idle_s"), round3(idle_s));
        r.result(&format!("{name}_instance_cpu_traffic_s"), round3(traffic_s));
        r.result(&format!("{name}_instance_cpu_for_traffic_s"), round3(extra));
        if sent > 0 {
            r.result(
                &format!("{name}_instance_cpu_us_per_message"),
                round3(extra * 1e6 / sent as f64),
            );
        }
        if received > 0 && name == "first" {
            r.result(
                "first_instance_cpu_us_per_delivery",
                round3(extra * 1e6 / received as f64),
            );
        }
    }
    if let (Some(before), Some(idle), Some(after)) = (redis, redis_idle, redis_traffic) {
        let at_rest = calls_between(&before, &idle);
        let busy_calls = calls_between(&idle, &after);
        // (Commands a script runs count too: a publish is its EVALSHA and the commands inside.)
        let rest_total: u64 = at_rest.values().sum();
        let busy_total: u64 = busy_calls.values().sum();
        let baseline = rest_total as f64 * traffic_elapsed.as_secs_f64() / phase.as_secs_f64();
        let for_traffic = (busy_total as f64 - baseline).max(0.0);
        r.result("redis_calls_idle_phase", rest_total);
        r.result("redis_calls_traffic_phase", busy_total);
        r.result(
            "redis_commands_idle_phase",
            serde_json::to_value(&at_rest).unwrap_or_default(),
        );
        r.result(
            "redis_commands_traffic_phase",
            serde_json::to_value(&busy_calls).unwrap_or_default(),
        );
        if sent > 0 {
            r.result(
                "redis_evalsha_per_message",
                round3(*busy_calls.get("evalsha").unwrap_or(&0) as f64 / sent as f64),
            );
        }
        if sent > 0 {
            r.result("redis_calls_per_message", round3(for_traffic / sent as f64));
        }
        if received > 0 {
            r.result(
                "redis_calls_per_delivery",
                round3(for_traffic / received as f64),
            );
        }
    }
    r.result("wall_s", round3(started.elapsed().as_secs_f64()));
    r.errors(&ctx.errors);
    Ok(r)
}
