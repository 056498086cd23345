//! Several clients at once: threads, one connection each, kept for the whole bench.
//!
//! - `<backend>/throughput`: 8 clients call hits (the key exists, 10,000 rows) as fast as
//!   they can for a fixed time; calls per second of `get_or_create` against Diesel's bare
//!   select (`.first()`, `.limit(2).load()`, `.load()`), in rounds where the sides take turns
//!   (rotating order), the ratio taken round by round.
//! - `<backend>/contention`: 8 clients each get-or-create the same 500 new keys, every
//!   client in its own shuffled order (`shuffled`) or all in the same order
//!   (`same_order`), from an empty table; the wall time until all are done, for
//!   `get_or_create` against the hand-written error-free `select_first` (`SELECT`, then
//!   an insert that does nothing on a clash, then `SELECT`) and `insert_first` (the
//!   insert, then `SELECT`). Every run checks that each key was created exactly once.
//!
//! `cargo bench -p get-or-create-benches --bench concurrent [-- FILTER]`

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use get_or_create_benches::{
    existing_key, keep, quartiles, Backend, Call, CallCreated, Job, Mysql, Pg, RunMode, Sqlite,
    Workers,
};

/// Clients (threads, one connection each).
const CLIENTS: usize = 8;
/// Rows in the table of the throughput bench.
const ROWS: usize = 10_000;
/// Keys of the contention bench.
const KEYS: usize = 500;

fn hit_sides<B: Backend>() -> Vec<(&'static str, Call<B::Conn>)> {
    vec![
        ("bare_first (LIMIT 1)", |c, k| keep(B::bare_first(c, k))),
        ("bare_limit2", |c, k| keep(B::bare_limit2(c, k))),
        ("bare_load (no LIMIT)", |c, k| keep(B::bare_load(c, k))),
        ("get_or_create", |c, k| {
            assert!(!B::get_or_create(c, k).1, "a hit creates nothing")
        }),
    ]
}

fn contention_sides<B: Backend>() -> Vec<(&'static str, CallCreated<B::Conn>)> {
    vec![
        ("get_or_create", |c, k| B::get_or_create(c, k)),
        ("select_first (hand-written)", |c, k| B::select_first(c, k)),
        ("insert_first (hand-written)", |c, k| B::insert_first(c, k)),
    ]
}

/// Throughput of hits: calls per second of each side with [`CLIENTS`] clients.
fn throughput<B: Backend>(db: &B, mode: &RunMode, report: &mut String) {
    let (rounds, round_time) = if mode.measure {
        (7, Duration::from_millis(1500))
    } else {
        (1, Duration::from_millis(50))
    };
    let mut conn = db.connect();
    B::reset(&mut conn, ROWS);
    let keys: Arc<Vec<String>> = Arc::new((0..ROWS).map(existing_key).collect());
    let sides = hit_sides::<B>();
    let mut rates = vec![Vec::new(); sides.len()];
    Workers::with(
        CLIENTS,
        || db.connect(),
        |workers| {
            // Warm up: statements prepared on every connection.
            for &(_, call) in &sides {
                let keys = keys.clone();
                workers.run(Arc::new(move |w, conn| {
                    for i in 0..100 {
                        call(conn, &keys[(w * 1_000 + i) % ROWS]);
                    }
                    0
                }));
            }
            for round in 0..rounds {
                for k in 0..sides.len() {
                    let i = (round + k) % sides.len();
                    let call = sides[i].1;
                    let stop = Arc::new(AtomicBool::new(false));
                    let barrier = Arc::new(Barrier::new(workers.len() + 1));
                    let job: Job<B::Conn> = {
                        let (stop, barrier, keys) = (stop.clone(), barrier.clone(), keys.clone());
                        Arc::new(move |w, conn| {
                            barrier.wait();
                            let mut calls = 0;
                            let mut next = w * (ROWS / CLIENTS);
                            while !stop.load(Ordering::Relaxed) {
                                call(conn, &keys[next % ROWS]);
                                next += 1;
                                calls += 1;
                            }
                            calls
                        })
                    };
                    workers.start(job);
                    barrier.wait();
                    let start = Instant::now();
                    std::thread::sleep(round_time);
                    stop.store(true, Ordering::Relaxed);
                    let calls: u64 = workers.collect().iter().sum();
                    rates[i].push(calls as f64 / start.elapsed().as_secs_f64());
                }
            }
        },
    );
    let _ = write!(
        report,
        "\n{}, hits with {CLIENTS} clients (threads, one connection each), {rounds} rounds of \
         {:.1} s per side\n\n| side | calls/s (median) | quartiles | ratio to {} (median of \
         rounds) | ratio quartiles |\n|---|---:|---|---:|---|\n",
        B::NAME,
        round_time.as_secs_f64(),
        sides[0].0
    );
    let floor = rates[0].clone();
    for ((name, _), own) in sides.iter().zip(&rates) {
        let mut ratios: Vec<f64> = own.iter().zip(&floor).map(|(r, f)| r / f).collect();
        let [rq1, ratio, rq3] = quartiles(&mut ratios);
        let [q1, median, q3] = quartiles(&mut own.clone());
        let _ = writeln!(
            report,
            "| {name} | {median:.0} | {q1:.0}-{q3:.0} | {ratio:.3}x | {rq1:.3}-{rq3:.3} |"
        );
    }
}

/// A permutation of `0..n` from `seed` (xorshift; no dependency).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// 8 clients, the same 500 new keys each; wall time per run.
fn contention<B: Backend>(db: &B, mode: &RunMode, report: &mut String) {
    let rounds = if mode.measure { 5 } else { 1 };
    let keys: Arc<Vec<String>> = Arc::new(
        (0..KEYS)
            .map(|i| format!("contended{i}@example.com"))
            .collect(),
    );
    let sides = contention_sides::<B>();
    let mut conn = db.connect();
    Workers::with(
        CLIENTS,
        || db.connect(),
        |workers| {
            for same_order in [false, true] {
                let mut times = vec![Vec::new(); sides.len()];
                for round in 0..rounds {
                    for k in 0..sides.len() {
                        let i = (round + k) % sides.len();
                        let call = sides[i].1;
                        B::reset(&mut conn, 0);
                        let barrier = Arc::new(Barrier::new(workers.len() + 1));
                        let job: Job<B::Conn> = {
                            let (barrier, keys) = (barrier.clone(), keys.clone());
                            let seed = round as u64 * 1_000;
                            Arc::new(move |w, conn| {
                                let order = if same_order {
                                    (0..KEYS).collect()
                                } else {
                                    shuffled(KEYS, seed + w as u64 + 1)
                                };
                                barrier.wait();
                                let mut created = 0;
                                for key in order {
                                    if call(conn, &keys[key]).1 {
                                        created += 1;
                                    }
                                }
                                created
                            })
                        };
                        workers.start(job);
                        barrier.wait();
                        let start = Instant::now();
                        let created: u64 = workers.collect().iter().sum();
                        times[i].push(start.elapsed());
                        assert_eq!(
                            created, KEYS as u64,
                            "{}: each key created once",
                            sides[i].0
                        );
                        assert_eq!(
                            B::count(&mut conn),
                            KEYS as i64,
                            "{}: one row per key",
                            sides[i].0
                        );
                    }
                }
                let _ = write!(
                    report,
                    "\n{}, contention: {CLIENTS} clients x the same {KEYS} new keys, {}, {rounds} \
                 runs per side\n\n| side | ms per run (median) | quartiles | ratio to {} \
                 (median of rounds) | ratio quartiles |\n|---|---:|---|---:|---|\n",
                    B::NAME,
                    if same_order {
                        "all in the same order"
                    } else {
                        "each client in its own shuffled order"
                    },
                    sides[0].0
                );
                let floor = times[0].clone();
                for ((name, _), own) in sides.iter().zip(&times) {
                    let mut ratios: Vec<f64> = own
                        .iter()
                        .zip(&floor)
                        .map(|(t, f)| t.as_secs_f64() / f.as_secs_f64())
                        .collect();
                    let [rq1, ratio, rq3] = quartiles(&mut ratios);
                    let [q1, median, q3] = quartiles(&mut own.clone());
                    let ms = |d: Duration| d.as_secs_f64() * 1e3;
                    let _ = writeln!(
                        report,
                        "| {name} | {:.1} | {:.1}-{:.1} | {ratio:.3}x | {rq1:.3}-{rq3:.3} |",
                        ms(median),
                        ms(q1),
                        ms(q3)
                    );
                }
            }
        },
    );
}

fn bench_backend<B: Backend>(mode: &RunMode, report: &mut String) {
    let throughput_id = format!("{}/throughput", B::ID);
    let contention_id = format!("{}/contention", B::ID);
    if !mode.wants_any(&[&throughput_id, &contention_id]) {
        return;
    }
    let Some(db) = B::create() else {
        report.push_str(&format!("\n{}: skipped\n", B::NAME));
        return;
    };
    if mode.wants(&throughput_id) {
        throughput(&db, mode, report);
    }
    if mode.wants(&contention_id) {
        contention(&db, mode, report);
    }
}

fn main() {
    let mode = RunMode::from_args();
    let mut report = String::new();
    bench_backend::<Pg>(&mode, &mut report);
    bench_backend::<Mysql>(&mode, &mut report);
    bench_backend::<Sqlite>(&mode, &mut report);
    println!("\n## Concurrent clients\n{report}");
}
