//! `strato-bench`: a reproducible benchmark of Strato's EC2 Query API.
//!
//! For every scale (number of instances; by default 1,000 and 10,000) it starts a
//! fresh `strato up --hypervisor sim` on 127.0.0.1 with its own empty data
//! directory, fills it with that many instances and measures, from a real HTTP
//! client that signs every request with SigV4 (keep-alive connection pool, a fresh
//! signature per request, timings taken around sign + send + reading the whole
//! body):
//!
//! 1. **RunInstances throughput** — the time to seed the instances in large
//!    batches (`MaxCount` = `--seed-batch`, reported as instances/s), then a sample
//!    of `RunInstances MaxCount=1` calls made by `--run-concurrency` concurrent
//!    callers (requests/s, p50/p99 latency). The sample is part of the scale: the
//!    batches seed `scale - sample` instances so that the listing below sees
//!    exactly `scale` instances.
//! 2. **Listing** — `DescribeInstances MaxResults=1000`, following `NextToken` to the
//!    end, repeated `--list-reps` times after one unmeasured warm-up listing:
//!    p50/p99 of one page of (up to) 1,000 instances and of the whole listing.
//! 3. **One instance by id** — `DescribeInstances InstanceId.1=<random seeded id>`,
//!    sequentially (one request in flight), `--by-id-requests` times: p50/p99.
//! 4. **Sustained Describe throughput** — `--workers` concurrent callers doing
//!    DescribeInstances by random id for `--sustain-secs` seconds: requests/s
//!    (and p50/p99 under that load), plus the CPU the server and this client
//!    used meanwhile (they share the machine's cores).
//!
//! Targets (from the issue): a page of 1,000 instances p99 ≤ 100 ms, one
//! instance by id p99 ≤ 5 ms, ≥ 2,000 Describe requests/s sustained.
//!
//! With `--moto URL` the same measurements run against an already started moto
//! server (`moto_server`, the peer named in the issue) at `--moto-scale`
//! instances, with the smaller repetition counts of the `--moto-*` options so
//! its run stays bounded, and a table of Strato/moto ratios is printed.
//! `scripts/bench.sh` builds everything, starts moto and runs this binary.

mod codec;

/// The allocator the server runs with, so in-process codec figures match it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use time::OffsetDateTime;
use tokio::process::{Child, Command};

/// The root credentials the benchmark gives the Strato servers it starts.
const ACCESS_KEY_ID: &str = "AKIABENCHMARK0000001";
const SECRET_ACCESS_KEY: &str = "strato/bench/secret/key/0000000000000000";
/// moto accepts any well-formed credentials.
/// A second account for the flood phase: its latency while the root account floods.
const QUIET_ACCESS_KEY_ID: &str = "AKIABENCHQUIET000001";
const QUIET_SECRET_ACCESS_KEY: &str = "strato/bench/quiet/key/00000000000000000";
const MOTO_ACCESS_KEY_ID: &str = "AKIAMOTOBENCH0000001";
const MOTO_SECRET_ACCESS_KEY: &str = "moto/bench/secret/key/00000000000000000";
const REGION: &str = "us-east-1";
const API_VERSION: &str = "2016-11-15";
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// Strato's bundled AMI.
const STRATO_IMAGE_ID: &str = "ami-05a9d2c7e4b1f3801";
const INSTANCE_TYPE: &str = "t3.micro";
/// Largest page DescribeInstances allows; the listing measurements use it.
const PAGE_SIZE: usize = 1000;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "strato-bench",
    about = "Benchmark Strato's EC2 API (RunInstances / DescribeInstances) at several scales, optionally against moto"
)]
struct Args {
    /// The `strato` binary to benchmark (default: `strato` next to this binary).
    #[arg(long)]
    strato_bin: Option<PathBuf>,
    /// Instance counts to benchmark, one fresh server and data directory each.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    scales: Vec<usize>,
    /// Where the servers' temporary data directories and logs go (removed at the end
    /// unless --keep-work-dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the data directories and server logs.
    #[arg(long)]
    keep_work_dir: bool,
    /// STRATO_LOG for the servers (logging at info level would dominate).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// MaxCount of each seeding RunInstances call.
    #[arg(long, default_value_t = 1000)]
    seed_batch: usize,
    /// Number of RunInstances MaxCount=1 calls in the latency sample.
    #[arg(long, default_value_t = 200)]
    run_sample: usize,
    /// Concurrent callers for the RunInstances MaxCount=1 sample.
    #[arg(long, default_value_t = 8)]
    run_concurrency: usize,
    /// Measured full listings (after the warm-up; 100 so that p99 is not just the
    /// slowest of a handful).
    #[arg(long, default_value_t = 100)]
    list_reps: usize,
    /// Sequential DescribeInstances-by-id requests.
    #[arg(long, default_value_t = 2000)]
    by_id_requests: usize,
    /// Concurrent callers for the sustained Describe throughput.
    #[arg(long, default_value_t = 12)]
    workers: usize,
    /// Duration of the sustained Describe phase.
    #[arg(long, default_value_t = 10.0)]
    sustain_secs: f64,
    /// Seconds of unmeasured listing before the measured listings (strato only; the
    /// first listing after the launches is reported on its own).
    #[arg(long, default_value_t = 10.0)]
    warmup_secs: f64,
    /// A running moto server to measure as the peer, e.g. http://127.0.0.1:5000.
    #[arg(long)]
    moto: Option<String>,
    /// Instances to create in moto.
    #[arg(long, default_value_t = 1000)]
    moto_scale: usize,
    /// moto: RunInstances MaxCount=1 sample size.
    #[arg(long, default_value_t = 50)]
    moto_run_sample: usize,
    /// moto: measured full listings.
    #[arg(long, default_value_t = 10)]
    moto_list_reps: usize,
    /// moto: sequential by-id requests.
    #[arg(long, default_value_t = 500)]
    moto_by_id_requests: usize,
    /// moto: duration of the sustained Describe phase.
    #[arg(long, default_value_t = 10.0)]
    moto_sustain_secs: f64,
    /// moto server's pid, to report the CPU it uses in the sustained phase.
    #[arg(long)]
    moto_pid: Option<u32>,
    /// moto: AMI id for RunInstances (default: the first image moto's DescribeImages lists).
    #[arg(long)]
    moto_image_id: Option<String>,
    /// Run only the in-process codec measurements (no servers, no moto).
    #[arg(long)]
    codec_only: bool,
    /// Seconds each in-process codec measurement runs (0 skips them).
    #[arg(long, default_value_t = 1.0)]
    codec_secs: f64,
    /// Skip the throttling phase (bucket cost; one account flooding, another measured).
    #[arg(long)]
    no_throttle_phase: bool,
    /// Throttling phase: seconds of the quiet account's idle and flooded samples.
    #[arg(long, default_value_t = 10.0)]
    flood_secs: f64,
    /// Throttling phase: the quiet account's request rate (EC2's default read bucket
    /// refills 20 tokens a second, so it stays below that).
    #[arg(long, default_value_t = 15.0)]
    quiet_rate: f64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

// ---------------------------------------------------------------------------
// Signed EC2 Query client
// ---------------------------------------------------------------------------

/// An EC2 Query API client: POSTs form bodies to `/`, each signed with SigV4 just
/// before it is sent, over reqwest's keep-alive connection pool.
#[derive(Clone)]
struct Ec2Client {
    http: reqwest::Client,
    url: String,
    host: String,
    access_key_id: &'static str,
    secret: &'static str,
}

/// RFC 3986 form encoding of one key or value (unreserved characters kept).
fn form_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

impl Ec2Client {
    fn new(endpoint: &str, access_key_id: &'static str, secret: &'static str) -> Result<Self> {
        let endpoint = endpoint.trim_end_matches('/');
        let host = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("endpoint must be http://host:port, got {endpoint}"))?
            .to_string();
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(120))
            .timeout(Duration::from_secs(600))
            .build()?;
        Ok(Ec2Client {
            http,
            url: format!("{endpoint}/"),
            host,
            access_key_id,
            secret,
        })
    }

    /// Calls `action` with `params`; returns the response body and the latency
    /// (signing, sending and reading the whole body). Any non-200 answer is an error.
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<(String, Duration)> {
        let a = self.send(action, params).await?;
        a.ok(action)?;
        Ok((a.text, a.latency))
    }

    /// As [`Ec2Client::call`], with the server's own time (its `Server-Timing`
    /// header) when it reports one.
    async fn call_srv(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<(String, Duration, Option<Duration>)> {
        let a = self.send(action, params).await?;
        a.ok(action)?;
        Ok((a.text, a.latency, a.server))
    }

    /// Sends one request and returns whatever came back, errors included.
    async fn send(&self, action: &str, params: &[(&str, &str)]) -> Result<Answer> {
        let mut body = String::with_capacity(128);
        body.push_str("Action=");
        form_encode(action, &mut body);
        body.push_str("&Version=");
        body.push_str(API_VERSION);
        for (k, v) in params {
            body.push('&');
            form_encode(k, &mut body);
            body.push('=');
            form_encode(v, &mut body);
        }
        let start = Instant::now();
        let signed = strato_sigv4::sign_headers(
            "POST",
            &self.host,
            "/",
            "",
            &[("content-type".to_string(), CONTENT_TYPE.to_string())],
            body.as_bytes(),
            self.access_key_id,
            self.secret,
            REGION,
            "ec2",
            OffsetDateTime::now_utc(),
        );
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", CONTENT_TYPE);
        for (k, v) in &signed {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .body(body)
            .send()
            .await
            .with_context(|| format!("{action}: sending to {}", self.url))?;
        let status = resp.status().as_u16();
        let server = resp
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(server_timing);
        let text = resp
            .text()
            .await
            .with_context(|| format!("{action}: reading the response"))?;
        Ok(Answer {
            status,
            text,
            latency: start.elapsed(),
            server,
        })
    }
}

/// One HTTP answer: status, body, latency seen by the client, time the server reported.
struct Answer {
    status: u16,
    text: String,
    latency: Duration,
    server: Option<Duration>,
}

impl Answer {
    fn ok(&self, action: &str) -> Result<()> {
        if (200..300).contains(&self.status) {
            return Ok(());
        }
        let excerpt: String = self.text.chars().take(600).collect();
        bail!("{action} answered HTTP {}: {excerpt}", self.status)
    }
}

/// The `dur` (milliseconds) of a `Server-Timing` header such as `strato;dur=0.412`.
fn server_timing(v: &str) -> Option<Duration> {
    let ms: f64 = v
        .split(';')
        .find_map(|p| p.trim().strip_prefix("dur="))?
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(ms / 1e3))
}

/// The text of every `<tag>…</tag>` in `xml`, in order (simple scanning: the
/// elements read here hold plain ids and tokens).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = vec![];
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        match rest.find(&close) {
            Some(j) => {
                out.push(&rest[..j]);
                rest = &rest[j + close.len()..];
            }
            None => break,
        }
    }
    out
}

/// Instance ids in a RunInstances/DescribeInstances response, each once, in order.
fn instance_ids(xml: &str, seen: &mut HashSet<String>, out: &mut Vec<String>) {
    for id in elements(xml, "instanceId") {
        if id.starts_with("i-") && seen.insert(id.to_string()) {
            out.push(id.to_string());
        }
    }
}

fn next_token(xml: &str) -> Option<String> {
    elements(xml, "nextToken")
        .into_iter()
        .map(str::trim)
        .find(|t| !t.is_empty())
        .map(str::to_string)
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// Nearest-rank percentile of a sample, in milliseconds.
fn pct_ms(sample: &[Duration], p: f64) -> f64 {
    if sample.is_empty() {
        return f64::NAN;
    }
    let mut v: Vec<Duration> = sample.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1].as_secs_f64() * 1e3
}

/// A small xorshift64* generator: random ids without another dependency.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// CPU seconds (user + system) a process has used so far, from /proc (Linux
/// reports it in USER_HZ = 100 ticks per second).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the comm.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Better {
    Lower,
    Higher,
}

#[derive(Clone, Debug)]
struct Row {
    system: String,
    scale: usize,
    /// Stable key, used to pair Strato's and moto's figures.
    key: &'static str,
    metric: String,
    value: f64,
    unit: &'static str,
    better: Better,
    goal: Option<Goal>,
}

impl Row {
    fn verdict(&self) -> &'static str {
        match self.goal {
            None => "-",
            Some(Goal::AtMost(t)) if self.value <= t => "PASS",
            Some(Goal::AtLeast(t)) if self.value >= t => "PASS",
            Some(_) => "FAIL",
        }
    }
    fn target(&self) -> String {
        match self.goal {
            None => "-".into(),
            Some(Goal::AtMost(t)) => format!("<= {} {}", fmt_num(t), self.unit),
            Some(Goal::AtLeast(t)) => format!(">= {} {}", fmt_num(t), self.unit),
        }
    }
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// One benchmark run's settings for one system.
struct Plan {
    system: &'static str,
    scale: usize,
    image_id: String,
    seed_batch: usize,
    run_sample: usize,
    run_concurrency: usize,
    list_reps: usize,
    by_id_requests: usize,
    workers: usize,
    sustain: Duration,
    /// The server's pid, to report its CPU use (only for servers we started).
    server_pid: Option<String>,
    /// Unmeasured listing before the measured ones (see `run_plan`).
    warmup: Duration,
}

struct Recorder<'a> {
    plan: &'a Plan,
    rows: Vec<Row>,
}

impl Recorder<'_> {
    fn add(
        &mut self,
        key: &'static str,
        metric: String,
        value: f64,
        unit: &'static str,
        better: Better,
        goal: Option<Goal>,
    ) {
        let row = Row {
            system: self.plan.system.into(),
            scale: self.plan.scale,
            key,
            metric,
            value,
            unit,
            better,
            goal,
        };
        eprintln!(
            "    {:<52} {:>10} {:<6} {}",
            row.metric,
            fmt_num(row.value),
            row.unit,
            if row.goal.is_some() {
                format!("(target {} -> {})", row.target(), row.verdict())
            } else {
                String::new()
            }
        );
        self.rows.push(row);
    }
}

// ---------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------

/// Runs the four measurements against `client` (a server holding no instances of
/// this account yet) and returns the rows.
async fn run_plan(client: &Ec2Client, plan: &Plan) -> Result<Vec<Row>> {
    let mut rec = Recorder { plan, rows: vec![] };
    let sample = plan.run_sample.min(plan.scale);
    let mut ids: Vec<String> = Vec::with_capacity(plan.scale);
    let mut seen: HashSet<String> = HashSet::with_capacity(plan.scale);

    // 1a. Seeding: RunInstances in batches of MaxCount = seed_batch, one call at a
    //     time. Instances/s = instances created / wall time of all the calls.
    let to_seed = plan.scale - sample;
    eprintln!(
        "  [{} @ {}] seeding {} instances with RunInstances MaxCount<={} ...",
        plan.system, plan.scale, to_seed, plan.seed_batch
    );
    // Launches go round the zones: a default subnet (a /20) holds 4,091 instances, as
    // on AWS, so one zone alone cannot take the larger scales.
    let (zones_xml, _) = client.call("DescribeAvailabilityZones", &[]).await?;
    let zones: Vec<String> = elements(&zones_xml, "zoneName")
        .into_iter()
        .map(str::to_string)
        .collect();
    let zones = Arc::new(zones);
    let zone_of = |i: usize| {
        zones
            .get(i % zones.len().max(1))
            .cloned()
            .unwrap_or_default()
    };
    let t0 = Instant::now();
    let mut calls = 0usize;
    let mut slowest = Duration::ZERO;
    while ids.len() < to_seed {
        let n = (to_seed - ids.len()).min(plan.seed_batch).to_string();
        let zone = zone_of(calls);
        let mut params = vec![
            ("ImageId", plan.image_id.as_str()),
            ("InstanceType", INSTANCE_TYPE),
            ("MinCount", n.as_str()),
            ("MaxCount", n.as_str()),
        ];
        if !zone.is_empty() {
            params.push(("Placement.AvailabilityZone", zone.as_str()));
        }
        let (xml, lat) = client.call("RunInstances", &params).await?;
        let before = ids.len();
        instance_ids(&xml, &mut seen, &mut ids);
        if ids.len() == before {
            bail!("RunInstances returned no instance ids");
        }
        calls += 1;
        slowest = slowest.max(lat);
    }
    let seed_wall = t0.elapsed();
    if to_seed > 0 {
        rec.add(
            "seed_ips",
            format!(
                "RunInstances seeding (MaxCount={}, {} call{})",
                plan.seed_batch.min(to_seed),
                calls,
                if calls == 1 { "" } else { "s" }
            ),
            to_seed as f64 / seed_wall.as_secs_f64(),
            "inst/s",
            Better::Higher,
            None,
        );
        rec.add(
            "seed_call_max",
            format!(
                "  slowest seeding call ({} instances)",
                plan.seed_batch.min(to_seed)
            ),
            slowest.as_secs_f64() * 1e3,
            "ms",
            Better::Lower,
            None,
        );
    }

    // 1b. RunInstances MaxCount=1: `sample` calls spread over `run_concurrency`
    //     concurrent callers. Requests/s = calls / wall time; latency per call.
    if sample > 0 {
        eprintln!(
            "  [{} @ {}] RunInstances MaxCount=1 x {} ({} concurrent) ...",
            plan.system, plan.scale, sample, plan.run_concurrency
        );
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let t0 = Instant::now();
        let mut tasks = vec![];
        for _ in 0..plan.run_concurrency.max(1) {
            let client = client.clone();
            let next = next.clone();
            let image = plan.image_id.clone();
            let zones = zones.clone();
            tasks.push(tokio::spawn(async move {
                let mut out: Vec<(String, Duration)> = vec![];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= sample {
                        break;
                    }
                    let zone = zones.get(i % zones.len().max(1)).cloned();
                    let mut params = vec![
                        ("ImageId", image.as_str()),
                        ("InstanceType", INSTANCE_TYPE),
                        ("MinCount", "1"),
                        ("MaxCount", "1"),
                    ];
                    if let Some(z) = zone.as_deref() {
                        params.push(("Placement.AvailabilityZone", z));
                    }
                    let (xml, lat) = client.call("RunInstances", &params).await?;
                    out.push((xml, lat));
                }
                anyhow::Ok(out)
            }));
        }
        let mut lats = vec![];
        for t in tasks {
            for (xml, lat) in t.await?? {
                instance_ids(&xml, &mut seen, &mut ids);
                lats.push(lat);
            }
        }
        let wall = t0.elapsed();
        rec.add(
            "run1_rps",
            format!(
                "RunInstances MaxCount=1 ({} calls, {} concurrent)",
                sample, plan.run_concurrency
            ),
            sample as f64 / wall.as_secs_f64(),
            "req/s",
            Better::Higher,
            None,
        );
        rec.add(
            "run1_p50",
            "  RunInstances MaxCount=1 latency p50".into(),
            pct_ms(&lats, 50.0),
            "ms",
            Better::Lower,
            None,
        );
        rec.add(
            "run1_p99",
            "  RunInstances MaxCount=1 latency p99".into(),
            pct_ms(&lats, 99.0),
            "ms",
            Better::Lower,
            None,
        );
    }
    if ids.len() != plan.scale {
        bail!(
            "created {} distinct instances, expected {}",
            ids.len(),
            plan.scale
        );
    }

    // Settle: with a 0 ms simulated boot, instances leave `pending` right away, but
    // wait (bounded) until no listed instance is pending so the state machine's
    // background work does not overlap the measurements.
    let t0 = Instant::now();
    loop {
        let (_, pending, _, _) = list_all(client).await?;
        if pending == 0 || t0.elapsed() > Duration::from_secs(60) {
            if pending > 0 {
                eprintln!("  note: {pending} instances still pending after 60 s; measuring anyway");
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Running is not the end of a launch: the host agent and the simulated VMs still
    // record what they did. Measure once the server has gone quiet (under 5% of a
    // core over half a second, for at most 20 s), so that work does not land in the
    // listings' figures.
    if let Some(pid) = &plan.server_pid {
        let t0 = Instant::now();
        let mut prev = cpu_secs(pid);
        while t0.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = cpu_secs(pid);
            if let (Some(a), Some(b)) = (prev, now) {
                if b - a < 0.025 {
                    break;
                }
            }
            prev = now;
        }
        eprintln!(
            "  [{} @ {}] server quiet after {:.1} s",
            plan.system,
            plan.scale,
            t0.elapsed().as_secs_f64()
        );
    }

    // 2. Listing: DescribeInstances MaxResults=1000 following NextToken to the end.
    //    The first listing after the launches is reported on its own (memory the
    //    launches just touched is still settling in the kernel: on this project's
    //    machines the same page costs 3-5x more for a few seconds, with the server
    //    idle). Then listings go on unmeasured for `warmup_secs`, as a fleet is found
    //    by tools that list it long after launching it, and `list_reps` are measured.
    eprintln!(
        "  [{} @ {}] listing all instances in pages of {} x {} ...",
        plan.system, plan.scale, PAGE_SIZE, plan.list_reps
    );
    let (listed, _, first_pages, _, _) = list_all_srv(client).await?;
    if listed != plan.scale {
        bail!(
            "a full listing returned {listed} instances, expected {}",
            plan.scale
        );
    }
    // Seen by the client, as the measured pages are, so that systems compare.
    if let Some(first) = first_pages.first().copied() {
        rec.add(
            "page_first",
            format!("  first page of {PAGE_SIZE} after the launches"),
            first.as_secs_f64() * 1e3,
            "ms",
            Better::Lower,
            None,
        );
    }
    let t0 = Instant::now();
    while t0.elapsed() < plan.warmup {
        list_all(client).await?;
    }
    let mut page_lats = vec![];
    let mut page_srv = vec![];
    let mut full_lats = vec![];
    let mut pages = 0;
    for _ in 0..plan.list_reps {
        let (n, _, pl, srv, full) = list_all_srv(client).await?;
        page_srv.extend(srv);
        if n != plan.scale {
            bail!(
                "a full listing returned {n} instances, expected {}",
                plan.scale
            );
        }
        pages = pl.len();
        page_lats.extend(pl);
        full_lats.push(full);
    }
    rec.add(
        "page_p50",
        format!("DescribeInstances page of {PAGE_SIZE} p50"),
        pct_ms(&page_lats, 50.0),
        "ms",
        Better::Lower,
        None,
    );
    rec.add(
        "page_p99",
        format!(
            "DescribeInstances page of {PAGE_SIZE} p99 ({} pages)",
            page_lats.len()
        ),
        pct_ms(&page_lats, 99.0),
        "ms",
        Better::Lower,
        Some(Goal::AtMost(100.0)),
    );
    if !page_srv.is_empty() {
        rec.add(
            "page_srv_p50",
            format!("  server time of a page of {PAGE_SIZE} p50"),
            pct_ms(&page_srv, 50.0),
            "ms",
            Better::Lower,
            None,
        );
        rec.add(
            "page_srv_p99",
            format!("  server time of a page of {PAGE_SIZE} p99"),
            pct_ms(&page_srv, 99.0),
            "ms",
            Better::Lower,
            Some(Goal::AtMost(10.0)),
        );
    }
    rec.add(
        "full_p50",
        format!(
            "list all {} ({} page{}) p50",
            plan.scale,
            pages,
            if pages == 1 { "" } else { "s" }
        ),
        pct_ms(&full_lats, 50.0),
        "ms",
        Better::Lower,
        None,
    );
    rec.add(
        "full_p99",
        format!("list all {} p99 ({} listings)", plan.scale, full_lats.len()),
        pct_ms(&full_lats, 99.0),
        "ms",
        Better::Lower,
        None,
    );

    // 3. One instance by id: sequential DescribeInstances InstanceId.1=<random id>,
    //    one request in flight, over the warm keep-alive connection.
    eprintln!(
        "  [{} @ {}] DescribeInstances by id x {} (sequential) ...",
        plan.system, plan.scale, plan.by_id_requests
    );
    let ids = Arc::new(ids);
    let mut rng = Rng::new(0x5eed);
    let mut lats = Vec::with_capacity(plan.by_id_requests);
    let mut srv_lats = Vec::with_capacity(plan.by_id_requests);
    for _ in 0..plan.by_id_requests {
        let id = &ids[rng.below(ids.len())];
        let (xml, lat, srv) = client
            .call_srv("DescribeInstances", &[("InstanceId.1", id)])
            .await?;
        if !xml.contains(id.as_str()) {
            bail!("DescribeInstances {id} did not return it");
        }
        lats.push(lat);
        srv_lats.extend(srv);
    }
    rec.add(
        "byid_p50",
        "DescribeInstances 1 by id p50".into(),
        pct_ms(&lats, 50.0),
        "ms",
        Better::Lower,
        None,
    );
    rec.add(
        "byid_p99",
        format!("DescribeInstances 1 by id p99 ({} requests)", lats.len()),
        pct_ms(&lats, 99.0),
        "ms",
        Better::Lower,
        Some(Goal::AtMost(5.0)),
    );
    if !srv_lats.is_empty() {
        rec.add(
            "byid_srv_p50",
            "  server time of 1 by id p50".into(),
            pct_ms(&srv_lats, 50.0),
            "ms",
            Better::Lower,
            None,
        );
        rec.add(
            "byid_srv_p99",
            "  server time of 1 by id p99".into(),
            pct_ms(&srv_lats, 99.0),
            "ms",
            Better::Lower,
            Some(Goal::AtMost(1.0)),
        );
    }

    // 4. Sustained: `workers` concurrent callers, each looping DescribeInstances by
    //    random id until the deadline. Requests/s = completed requests / wall time.
    eprintln!(
        "  [{} @ {}] sustained DescribeInstances by id, {} workers for {:.0} s ...",
        plan.system,
        plan.scale,
        plan.workers,
        plan.sustain.as_secs_f64()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let server_cpu0 = plan.server_pid.as_deref().and_then(cpu_secs);
    let self_cpu0 = cpu_secs("self");
    let t0 = Instant::now();
    let mut tasks = vec![];
    for w in 0..plan.workers.max(1) {
        let client = client.clone();
        let ids = ids.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 1);
            let mut lats = vec![];
            while !stop.load(Ordering::Relaxed) {
                let id = &ids[rng.below(ids.len())];
                let (xml, lat) = client
                    .call("DescribeInstances", &[("InstanceId.1", id)])
                    .await?;
                if !xml.contains(id.as_str()) {
                    bail!("DescribeInstances {id} did not return it");
                }
                lats.push(lat);
            }
            anyhow::Ok(lats)
        }));
    }
    tokio::time::sleep(plan.sustain).await;
    stop.store(true, Ordering::Relaxed);
    let mut lats = vec![];
    for t in tasks {
        lats.extend(t.await??);
    }
    let wall = t0.elapsed();
    let server_cpu = plan
        .server_pid
        .as_deref()
        .and_then(cpu_secs)
        .zip(server_cpu0)
        .map(|(b, a)| b - a);
    let self_cpu = cpu_secs("self").zip(self_cpu0).map(|(b, a)| b - a);
    rec.add(
        "sustain_rps",
        format!(
            "Describe by id sustained ({} workers, {:.0} s)",
            plan.workers,
            wall.as_secs_f64()
        ),
        lats.len() as f64 / wall.as_secs_f64(),
        "req/s",
        Better::Higher,
        Some(Goal::AtLeast(2000.0)),
    );
    rec.add(
        "sustain_p50",
        "  latency under that load p50".into(),
        pct_ms(&lats, 50.0),
        "ms",
        Better::Lower,
        None,
    );
    rec.add(
        "sustain_p99",
        "  latency under that load p99".into(),
        pct_ms(&lats, 99.0),
        "ms",
        Better::Lower,
        None,
    );
    if let Some(cpu) = server_cpu {
        rec.add(
            "sustain_server_cpu",
            "  server CPU during it (100% = 1 core)".into(),
            cpu / wall.as_secs_f64() * 100.0,
            "%",
            Better::Lower,
            None,
        );
    }
    if let Some(cpu) = self_cpu {
        rec.add(
            "sustain_client_cpu",
            "  bench client CPU during it (100% = 1 core)".into(),
            cpu / wall.as_secs_f64() * 100.0,
            "%",
            Better::Lower,
            None,
        );
    }
    Ok(rec.rows)
}

/// Lists every instance with DescribeInstances MaxResults=1000, following NextToken.
/// Returns (distinct instances, how many are pending, each page's latency, total).
async fn list_all(client: &Ec2Client) -> Result<(usize, usize, Vec<Duration>, Duration)> {
    let (n, pending, pages, _, total) = list_all_srv(client).await?;
    Ok((n, pending, pages, total))
}

/// [`list_all`], with each page's server time too (when the server reports it).
async fn list_all_srv(
    client: &Ec2Client,
) -> Result<(usize, usize, Vec<Duration>, Vec<Duration>, Duration)> {
    let max = PAGE_SIZE.to_string();
    let mut token: Option<String> = None;
    let mut seen = HashSet::new();
    let mut ids = vec![];
    let mut pending = 0;
    let mut pages = vec![];
    let mut server = vec![];
    let t0 = Instant::now();
    loop {
        let mut params: Vec<(&str, &str)> = vec![("MaxResults", &max)];
        if let Some(t) = &token {
            params.push(("NextToken", t));
        }
        let (xml, lat, srv) = client.call_srv("DescribeInstances", &params).await?;
        pages.push(lat);
        server.extend(srv);
        instance_ids(&xml, &mut seen, &mut ids);
        pending += xml.matches("<name>pending</name>").count();
        match next_token(&xml) {
            Some(t) => token = Some(t),
            None => break,
        }
        if pages.len() > 100_000 {
            bail!("DescribeInstances pagination does not end");
        }
    }
    Ok((ids.len(), pending, pages, server, t0.elapsed()))
}

// ---------------------------------------------------------------------------
// Throttling
// ---------------------------------------------------------------------------

/// Launches `n` instances in one call and waits until none is pending; their ids.
async fn seed(client: &Ec2Client, n: usize) -> Result<Vec<String>> {
    let count = n.to_string();
    let (xml, _) = client
        .call(
            "RunInstances",
            &[
                ("ImageId", STRATO_IMAGE_ID),
                ("InstanceType", INSTANCE_TYPE),
                ("MinCount", &count),
                ("MaxCount", &count),
            ],
        )
        .await?;
    let mut ids = vec![];
    instance_ids(&xml, &mut HashSet::new(), &mut ids);
    let t0 = Instant::now();
    while list_all(client).await?.1 > 0 && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(ids)
}

/// What a load phase saw: latencies of the answered requests, how many were
/// throttled (HTTP 503), and the wall time.
struct Load {
    ok: Vec<Duration>,
    throttled: usize,
    wall: Duration,
}

/// `workers` callers looping DescribeInstances by random id for `dur`, flat out.
async fn flood(
    client: &Ec2Client,
    ids: &Arc<Vec<String>>,
    workers: usize,
    dur: Duration,
) -> Result<Load> {
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let mut tasks = vec![];
    for w in 0..workers.max(1) {
        let (client, ids, stop) = (client.clone(), ids.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(w as u64 + 77);
            let (mut ok, mut throttled) = (vec![], 0usize);
            while !stop.load(Ordering::Relaxed) {
                let id = &ids[rng.below(ids.len())];
                let a = client
                    .send("DescribeInstances", &[("InstanceId.1", id)])
                    .await?;
                if a.status == 503 {
                    throttled += 1;
                } else {
                    a.ok("DescribeInstances")?;
                    ok.push(a.latency);
                }
            }
            anyhow::Ok((ok, throttled))
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut load = Load {
        ok: vec![],
        throttled: 0,
        wall: Duration::ZERO,
    };
    for t in tasks {
        let (ok, throttled) = t.await??;
        load.ok.extend(ok);
        load.throttled += throttled;
    }
    load.wall = t0.elapsed();
    Ok(load)
}

/// One caller sending DescribeInstances by random id at `rate` a second for `dur`.
async fn paced(client: &Ec2Client, ids: &[String], rate: f64, dur: Duration) -> Result<Load> {
    let n = (rate * dur.as_secs_f64()).ceil() as usize;
    let mut rng = Rng::new(0xdead);
    let mut load = Load {
        ok: vec![],
        throttled: 0,
        wall: Duration::ZERO,
    };
    let t0 = Instant::now();
    for k in 0..n {
        let due = t0 + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let id = &ids[rng.below(ids.len())];
        let a = client
            .send("DescribeInstances", &[("InstanceId.1", id)])
            .await?;
        if a.status == 503 {
            load.throttled += 1;
        } else {
            a.ok("DescribeInstances")?;
            load.ok.push(a.latency);
        }
    }
    load.wall = t0.elapsed();
    Ok(load)
}

/// The throttling phase: what the buckets cost when they never run dry, and whether
/// one account flooding at full speed slows another account down.
async fn throttle_phase(bin: &Path, work: &Path, args: &Args) -> Result<Vec<Row>> {
    let plan = Plan {
        system: "strato",
        scale: 1000,
        image_id: STRATO_IMAGE_ID.into(),
        seed_batch: 1000,
        run_sample: 0,
        run_concurrency: 0,
        list_reps: 0,
        by_id_requests: 0,
        workers: args.workers,
        sustain: Duration::from_secs_f64(args.sustain_secs),
        server_pid: None,
        warmup: Duration::ZERO,
    };
    let mut rec = Recorder {
        plan: &plan,
        rows: vec![],
    };

    // A. Throttling on, buckets so large they never empty: the cost of the check.
    eprintln!("== strato, throttling on (--throttle-scale 1000000), 1000 instances");
    let dir = work.join("strato-throttle-cost");
    std::fs::remove_dir_all(&dir).ok();
    let server = StratoServer::start(bin, &dir, &args.server_log, Some(1e6)).await?;
    let client = Ec2Client::new(&server.endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY)?;
    let ids = Arc::new(seed(&client, 1000).await?);
    let load = flood(&client, &ids, args.workers, plan.sustain).await?;
    server.stop().await?;
    rec.add(
        "thr_on_rps",
        format!(
            "Describe by id sustained, throttling on, never empty ({} workers)",
            args.workers
        ),
        load.ok.len() as f64 / load.wall.as_secs_f64(),
        "req/s",
        Better::Higher,
        None,
    );

    // B. EC2's own buckets: the root account floods, a second account is measured.
    eprintln!("== strato, throttling at EC2's defaults: one account floods, another is measured");
    let dir = work.join("strato-throttle-flood");
    std::fs::remove_dir_all(&dir).ok();
    let server = StratoServer::start(bin, &dir, &args.server_log, Some(1.0)).await?;
    let out = Command::new(bin)
        .args(["accounts", "create", "quiet"])
        .args(["--access-key-id", QUIET_ACCESS_KEY_ID])
        .args(["--secret-access-key", QUIET_SECRET_ACCESS_KEY])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "strato accounts create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let root = Ec2Client::new(&server.endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY)?;
    let quiet = Ec2Client::new(
        &server.endpoint,
        QUIET_ACCESS_KEY_ID,
        QUIET_SECRET_ACCESS_KEY,
    )?;
    let root_ids = Arc::new(seed(&root, 100).await?);
    let quiet_ids = seed(&quiet, 10).await?;
    // Let the buckets the seeding used refill.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let dur = Duration::from_secs_f64(args.flood_secs);
    eprintln!(
        "  quiet account alone, {:.0} req/s for {:.0} s ...",
        args.quiet_rate,
        dur.as_secs_f64()
    );
    let idle = paced(&quiet, &quiet_ids, args.quiet_rate, dur).await?;
    eprintln!(
        "  the same while the root account floods with {} workers ...",
        args.workers
    );
    let flooder = {
        let (root, root_ids) = (root.clone(), root_ids.clone());
        let workers = args.workers;
        tokio::spawn(async move { flood(&root, &root_ids, workers, dur).await })
    };
    let during = paced(&quiet, &quiet_ids, args.quiet_rate, dur).await?;
    let flood_load = flooder.await??;
    server.stop().await?;
    let idle_p99 = pct_ms(&idle.ok, 99.0);
    let during_p99 = pct_ms(&during.ok, 99.0);
    rec.add(
        "flood_ok_rps",
        format!("flooding account: answered ({} workers)", args.workers),
        flood_load.ok.len() as f64 / flood_load.wall.as_secs_f64(),
        "req/s",
        Better::Higher,
        None,
    );
    rec.add(
        "flood_503_rps",
        "flooding account: throttled (RequestLimitExceeded)".into(),
        flood_load.throttled as f64 / flood_load.wall.as_secs_f64(),
        "req/s",
        Better::Higher,
        None,
    );
    rec.add(
        "quiet_idle_p50",
        format!("other account alone p50 ({} requests)", idle.ok.len()),
        pct_ms(&idle.ok, 50.0),
        "ms",
        Better::Lower,
        None,
    );
    rec.add(
        "quiet_idle_p99",
        "other account alone p99".into(),
        idle_p99,
        "ms",
        Better::Lower,
        None,
    );
    rec.add(
        "quiet_flood_p50",
        format!(
            "other account during the flood p50 ({} requests)",
            during.ok.len()
        ),
        pct_ms(&during.ok, 50.0),
        "ms",
        Better::Lower,
        None,
    );
    rec.add(
        "quiet_flood_p99",
        "other account during the flood p99".into(),
        during_p99,
        "ms",
        Better::Lower,
        None,
    );
    rec.add(
        "quiet_ratio",
        "  p99 during the flood / p99 alone".into(),
        during_p99 / idle_p99,
        "x",
        Better::Lower,
        Some(Goal::AtMost(3.0)),
    );
    rec.add(
        "quiet_throttled",
        "  other account's requests throttled".into(),
        (idle.throttled + during.throttled) as f64,
        "req",
        Better::Lower,
        Some(Goal::AtMost(0.0)),
    );
    Ok(rec.rows)
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

/// A `strato up` we started; killed when dropped (also on errors and signals).
struct StratoServer {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl StratoServer {
    /// Starts `strato up` in `dir`; `throttle` is None for no request throttling, or
    /// the `--throttle-scale` to throttle with.
    async fn start(
        bin: &Path,
        dir: &Path,
        log_level: &str,
        throttle: Option<f64>,
    ) -> Result<StratoServer> {
        // Ask the kernel for a free loopback port, then hand it to the server.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        let log = dir.join("strato.log");
        let logf = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .arg("up")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &listen])
            .args([
                "--hypervisor",
                "sim",
                "--sim-boot-ms",
                "0",
                "--sim-stop-ms",
                "0",
            ])
            .args(["--max-instances-per-account", "20000"])
            // The main phases measure the server, not EC2's request budget; the
            // throttling phase turns it on.
            .args(match throttle {
                None => vec!["--throttle".to_string(), "false".to_string()],
                Some(scale) => vec![
                    "--throttle".to_string(),
                    "true".to_string(),
                    "--throttle-scale".to_string(),
                    scale.to_string(),
                ],
            })
            .args(["--root-access-key-id", ACCESS_KEY_ID])
            .args(["--root-secret-access-key", SECRET_ACCESS_KEY])
            .env("STRATO_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = StratoServer {
            child,
            endpoint: format!("http://{listen}"),
            log,
        };
        let http = reqwest::Client::builder().no_proxy().build()?;
        let health = format!("{}/healthz", server.endpoint);
        let t0 = Instant::now();
        loop {
            if let Ok(r) = http.get(&health).send().await {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "strato up exited ({status}) before becoming healthy:\n{}",
                    tail(&server.log)
                );
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("strato up not healthy after 60 s:\n{}", tail(&server.log));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> Option<String> {
        self.child.id().map(|p| p.to_string())
    }

    async fn stop(mut self) -> Result<()> {
        self.child.start_kill().ok();
        self.child.wait().await?;
        Ok(())
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Picks an AMI moto will accept: the given one, else the first DescribeImages lists.
async fn moto_image(client: &Ec2Client, given: Option<&str>) -> Result<String> {
    if let Some(id) = given {
        return Ok(id.to_string());
    }
    let (xml, _) = client
        .call("DescribeImages", &[("Owner.1", "amazon")])
        .await?;
    elements(&xml, "imageId")
        .into_iter()
        .find(|i| i.starts_with("ami-"))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("moto's DescribeImages listed no AMI"))
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn machine_header() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU")
        .to_string();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    let now = OffsetDateTime::now_utc();
    let date = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.to_string());
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "date: {date}\nmachine: {cores} cores ({model}), {mem} RAM, load average {load} at start; \
         client and server share these cores"
    )
}

fn print_table(rows: &[Row]) {
    println!(
        "{:>6}  {:<7} {:<54} {:>10} {:<7} {:<16} result",
        "scale", "system", "metric", "value", "unit", "target"
    );
    println!("{}", "-".repeat(112));
    let mut last: Option<(usize, String)> = None;
    for r in rows {
        let group = (r.scale, r.system.clone());
        if last.as_ref().is_some_and(|l| *l != group) {
            println!();
        }
        last = Some(group);
        println!(
            "{:>6}  {:<7} {:<54} {:>10} {:<7} {:<16} {}",
            r.scale,
            r.system,
            r.metric,
            fmt_num(r.value),
            r.unit,
            r.target(),
            r.verdict()
        );
    }
}

/// A label for a metric without the run-specific counts (the two systems ran
/// different numbers of repetitions).
fn ratio_label(key: &str) -> &'static str {
    match key {
        "seed_ips" => "RunInstances seeding (large MaxCount)",
        "run1_rps" => "RunInstances MaxCount=1 throughput",
        "run1_p50" => "RunInstances MaxCount=1 latency p50",
        "run1_p99" => "RunInstances MaxCount=1 latency p99",
        "page_first" => "first page of 1000 after the launches",
        "page_p50" => "DescribeInstances page of 1000 p50",
        "page_p99" => "DescribeInstances page of 1000 p99",
        "full_p50" => "list all instances p50",
        "full_p99" => "list all instances p99",
        "byid_p50" => "DescribeInstances 1 by id p50",
        "byid_p99" => "DescribeInstances 1 by id p99",
        "sustain_rps" => "Describe by id sustained throughput",
        "sustain_p50" => "Describe by id under load p50",
        "sustain_p99" => "Describe by id under load p99",
        _ => "?",
    }
}

fn print_ratios(rows: &[Row], moto_scale: usize) {
    let pairs: Vec<(&Row, &Row)> = rows
        .iter()
        .filter(|r| r.system == "moto")
        .filter_map(|m| {
            rows.iter()
                .find(|s| s.system == "strato" && s.scale == moto_scale && s.key == m.key)
                .map(|s| (s, m))
        })
        .filter(|(s, _)| !s.key.ends_with("_cpu") && s.key != "seed_call_max")
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!(
        "{:>6}  {:<54} {:>12} {:>12} {:>14}",
        "scale", "metric", "strato", "moto", "speedup"
    );
    println!("{}", "-".repeat(104));
    for (s, m) in pairs {
        // Speedup > 1 means Strato is better: moto/strato for times, strato/moto for rates.
        let speedup = match s.better {
            Better::Lower => m.value / s.value,
            Better::Higher => s.value / m.value,
        };
        println!(
            "{:>6}  {:<54} {:>12} {:>12} {:>13}x",
            moto_scale,
            ratio_label(s.key),
            format!("{} {}", fmt_num(s.value), s.unit),
            format!("{} {}", fmt_num(m.value), m.unit),
            fmt_num(speedup)
        );
    }
}

fn rows_json(rows: &[Row]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "system": r.system,
                    "scale": r.scale,
                    "key": r.key,
                    "metric": r.metric.trim(),
                    "value": if r.value.is_finite() { serde_json::json!(r.value) } else { serde_json::Value::Null },
                    "unit": r.unit,
                    "target": r.target(),
                    "result": r.verdict(),
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

/// The directory for the servers' data and logs, and whether it is ours to remove.
fn work_dir(args: &Args) -> (PathBuf, bool) {
    match &args.work_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("strato-bench-{}", std::process::id())),
            true,
        ),
    }
}

/// Removes what the servers left in the work directory (all of it if we made it).
fn clean_work_dir(args: &Args) {
    if args.keep_work_dir {
        return;
    }
    let (dir, made) = work_dir(args);
    if made {
        std::fs::remove_dir_all(&dir).ok();
    } else {
        for scale in &args.scales {
            std::fs::remove_dir_all(dir.join(format!("strato-{scale}"))).ok();
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    if args.codec_only {
        eprintln!("== codec, in process (decode + validate, encode)");
        for c in codec::measure(Duration::from_secs_f64(args.codec_secs.max(0.5))) {
            println!(
                "{:<64} p50 {:>10.2} us   p99 {:>10.2} us",
                c.what, c.p50_us, c.p99_us
            );
        }
        return Ok(true);
    }
    let strato_bin = match &args.strato_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no directory for the current executable"))?
            .join("strato"),
    };
    if !strato_bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p strato) or pass --strato-bin",
            strato_bin.display()
        );
    }
    let (work_dir, _) = work_dir(&args);
    std::fs::create_dir_all(&work_dir)?;

    println!("== strato-bench: EC2 API (RunInstances / DescribeInstances) ==");
    println!("{}", machine_header());
    println!(
        "strato: {} up --hypervisor sim --sim-boot-ms 0 (STRATO_LOG={}), fresh data dir per scale",
        strato_bin.display(),
        args.server_log
    );
    println!(
        "client: reqwest keep-alive pool, SigV4 signed per request; latency = sign + send + read whole body"
    );
    println!(
        "plan per scale: seed (MaxCount={}), RunInstances MaxCount=1 x {} ({} concurrent), \
         1 warm-up + {} full listings (MaxResults={PAGE_SIZE}), {} sequential by-id, \
         {} workers x {:.0} s sustained",
        args.seed_batch,
        args.run_sample,
        args.run_concurrency,
        args.list_reps,
        args.by_id_requests,
        args.workers,
        args.sustain_secs
    );
    if let Some(m) = &args.moto {
        println!(
            "peer: moto at {m}, scale {} only, fewer repetitions to bound its run time: \
             RunInstances MaxCount=1 x {}, 1 warm-up + {} listings, {} sequential by-id, \
             {} workers x {:.0} s sustained",
            args.moto_scale,
            args.moto_run_sample,
            args.moto_list_reps,
            args.moto_by_id_requests,
            args.workers,
            args.moto_sustain_secs
        );
    } else {
        println!("peer: moto not measured (no --moto)");
    }
    println!();

    let started = Instant::now();
    let mut rows: Vec<Row> = vec![];
    for &scale in &args.scales {
        let dir = work_dir.join(format!("strato-{scale}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        eprintln!("== strato, {scale} instances");
        let server = StratoServer::start(&strato_bin, &dir, &args.server_log, None).await?;
        let client = Ec2Client::new(&server.endpoint, ACCESS_KEY_ID, SECRET_ACCESS_KEY)?;
        let plan = Plan {
            system: "strato",
            scale,
            image_id: STRATO_IMAGE_ID.into(),
            seed_batch: args.seed_batch,
            run_sample: args.run_sample,
            run_concurrency: args.run_concurrency,
            list_reps: args.list_reps,
            by_id_requests: args.by_id_requests,
            workers: args.workers,
            sustain: Duration::from_secs_f64(args.sustain_secs),
            server_pid: server.pid(),
            warmup: Duration::from_secs_f64(args.warmup_secs),
        };
        let result = run_plan(&client, &plan).await;
        let log = server.log.clone();
        server.stop().await?;
        match result {
            Ok(r) => rows.extend(r),
            Err(e) => {
                return Err(e.context(format!(
                    "strato at {scale} instances (server log: {})\n{}",
                    log.display(),
                    tail(&log)
                )))
            }
        }
    }

    if !args.no_throttle_phase {
        match throttle_phase(&strato_bin, &work_dir, &args).await {
            Ok(r) => rows.extend(r),
            Err(e) => return Err(e.context("the throttling phase")),
        }
    }
    let codec = if args.codec_secs > 0.0 {
        eprintln!("== codec, in process (decode + validate, encode)");
        codec::measure(Duration::from_secs_f64(args.codec_secs))
    } else {
        vec![]
    };

    let mut moto_ok = false;
    if let Some(url) = &args.moto {
        eprintln!("== moto, {} instances", args.moto_scale);
        let t0 = Instant::now();
        let moto = async {
            let client = Ec2Client::new(url, MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY)?;
            let image_id = moto_image(&client, args.moto_image_id.as_deref()).await?;
            eprintln!("  moto AMI: {image_id}");
            let plan = Plan {
                system: "moto",
                scale: args.moto_scale,
                image_id,
                seed_batch: args.seed_batch,
                run_sample: args.moto_run_sample,
                run_concurrency: args.run_concurrency,
                list_reps: args.moto_list_reps,
                by_id_requests: args.moto_by_id_requests,
                workers: args.workers,
                sustain: Duration::from_secs_f64(args.moto_sustain_secs),
                server_pid: args.moto_pid.map(|p| p.to_string()),
                // moto is slow enough (seconds a page) that its few listings are
                // measured as they come.
                warmup: Duration::ZERO,
            };
            run_plan(&client, &plan).await
        }
        .await;
        match moto {
            Ok(r) => {
                rows.extend(r);
                moto_ok = true;
                eprintln!("  moto took {:.0} s", t0.elapsed().as_secs_f64());
            }
            Err(e) => println!("NOTE: the moto measurements failed and are left out: {e:#}"),
        }
    }

    println!();
    println!(
        "== results (p50/p99 are nearest-rank percentiles; PASS/FAIL against the issue's targets)"
    );
    print_table(&rows);
    if moto_ok {
        println!();
        println!(
            "== strato vs moto at {} instances (speedup > 1: strato is faster; moto used fewer repetitions, see plan above)",
            args.moto_scale
        );
        print_ratios(&rows, args.moto_scale);
    }
    if !codec.is_empty() {
        println!();
        println!("== the front door's own cost per request, in process (no network, no store)");
        println!("{:<64} {:>12} {:>12}", "operation", "p50", "p99");
        println!("{}", "-".repeat(90));
        for c in &codec {
            println!(
                "{:<64} {:>9} us {:>9} us",
                c.what,
                fmt_num(c.p50_us),
                fmt_num(c.p99_us)
            );
        }
    }
    let find = |key: &str, scale: usize| {
        rows.iter()
            .find(|r| r.system == "strato" && r.key == key && r.scale == scale)
            .map(|r| r.value)
    };
    if let (Some(off), Some(on)) = (find("sustain_rps", 1000), find("thr_on_rps", 1000)) {
        println!();
        println!(
            "== throttling: unthrottled {} req/s, throttled (never empty) {} req/s: {}% of unthrottled",
            fmt_num(off),
            fmt_num(on),
            fmt_num(on / off * 100.0)
        );
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.verdict() == "FAIL")
        .map(|r| format!("{} @ {}: {}", r.system, r.scale, r.metric.trim()))
        .collect();
    let strato_failed = rows
        .iter()
        .any(|r| r.system == "strato" && r.verdict() == "FAIL");
    println!();
    if strato_failed {
        println!("targets missed by strato:");
        for f in failed.iter().filter(|f| f.starts_with("strato")) {
            println!("  - {f}");
        }
    } else {
        println!("strato meets every target at every scale measured");
    }
    println!(
        "benchmark time (excluding the build): {:.0} s",
        started.elapsed().as_secs_f64()
    );

    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "machine": machine_header(),
            "rows": rows_json(&rows),
            "codec": codec.iter().map(|c| serde_json::json!({
                "what": c.what, "p50_us": c.p50_us, "p99_us": c.p99_us,
            })).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(!strato_failed)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // On Ctrl-C or SIGTERM the benchmark future is dropped, which kills the
    // servers it started (kill_on_drop).
    let outcome: Result<Option<bool>> = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        anyhow::Ok(tokio::select! {
            r = run(args.clone()) => Some(r?),
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
        })
    });
    drop(rt);
    clean_work_dir(&args);
    match outcome? {
        None => {
            eprintln!("strato-bench: interrupted; the servers it started are stopped");
            std::process::exit(130);
        }
        // A missed target is reported in the table, not as a failed run; the exit
        // code tells scripts (2 = ran fine, some target missed).
        Some(false) => std::process::exit(2),
        Some(true) => Ok(()),
    }
}
