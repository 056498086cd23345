//! `get_or_create_many` on each backend:
//!
//! - `<backend>/bulk/scaling`: 100, 1,000, 10,000 and 100,000 keys, half of which exist,
//!   in one call (criterion reports keys/s; BENCHMARKS.md the cost per key). A size whose
//!   first call takes over 5 s is reported from that one run, not sampled by criterion.
//! - then, outside criterion (a loop of 10,000 single calls takes seconds, up to a
//!   minute on MariaDB, where each created row waits for its commit's fsync): one
//!   `get_or_create_many` of 10,000 keys, half of which exist, against a loop of 10,000
//!   `get_or_create` calls on the same keys, in alternating runs on one connection.
//!
//! Before every timed call the table is reset (untimed) to the same half of the keys.
//!
//! `cargo bench -p get-or-create-benches --bench bulk [-- FILTER]`

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use get_or_create_benches::{
    defaults, existing_key, keep, Backend, Mysql, Pg, RunMode, Sqlite, User, UserLookup,
};
use get_or_create_core::GetOrCreate;

/// Key counts of the scaling group.
const SIZES: [usize; 4] = [100, 1_000, 10_000, 100_000];
/// Key count of the bulk-against-loop comparison.
const VERSUS: usize = 10_000;
/// A loop slower than this is run once; faster ones three times.
const SLOW_LOOP: Duration = Duration::from_secs(5);
/// A bulk call slower than this is timed once, not by criterion (ten samples or more).
const SLOW_CALL: Duration = Duration::from_secs(5);

/// `get_or_create_many`, compiled per connection type.
trait Many: Backend {
    fn many(conn: &mut Self::Conn, keys: &[String]) -> Vec<(User, bool)>;
}

macro_rules! many_impl {
    ($($backend:ty),*) => {$(
        impl Many for $backend {
            fn many(conn: &mut Self::Conn, keys: &[String]) -> Vec<(User, bool)> {
                User::get_or_create_many(
                    conn,
                    keys.iter().map(|key| (UserLookup { email: key.clone() }, defaults())),
                )
                .expect("get_or_create_many")
            }
        }
    )*};
}

many_impl!(Pg, Mysql, Sqlite);

/// `n` keys, every other one among the `n / 2` rows that `reset(conn, n / 2)` puts in.
fn half_existing(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                existing_key(i / 2)
            } else {
                existing_key(n / 2 + i / 2)
            }
        })
        .collect()
}

fn check(results: &[(User, bool)], keys: &[String]) {
    assert_eq!(results.len(), keys.len());
    let created = results.iter().filter(|(_, created)| *created).count();
    assert_eq!(
        created,
        keys.len() - keys.len() / 2,
        "half the keys are new"
    );
    for ((user, _), key) in results.iter().zip(keys) {
        assert_eq!(&user.email, key, "results come in input order");
    }
}

/// The loop the bulk call replaces.
fn single_calls<B: Backend>(conn: &mut B::Conn, keys: &[String]) {
    for key in keys {
        keep(B::get_or_create(conn, key));
    }
}

fn bench_backend<B: Many>(c: &mut Criterion, mode: &RunMode, report: &mut String) {
    let scaling_id = format!("{}/bulk/scaling", B::ID);
    let versus_id = format!("{}/bulk/versus_loop", B::ID);
    if !mode.wants(&scaling_id) && !mode.wants(&versus_id) {
        return;
    }
    let Some(db) = B::create() else {
        report.push_str(&format!("\n{}: skipped\n", B::NAME));
        return;
    };
    let mut conn = db.connect();

    if mode.wants(&scaling_id) {
        let mut group = c.benchmark_group(&scaling_id);
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(500));
        let mut table = String::new();
        for n in SIZES {
            let keys = half_existing(n);
            B::reset(&mut conn, n / 2);
            let start = Instant::now();
            let results = B::many(&mut conn, &keys);
            let once = start.elapsed();
            check(&results, &keys);
            let too_slow = once > SLOW_CALL && mode.measure;
            let _ = writeln!(
                table,
                "| {n} | {:.1} ms | {:.2} |{}",
                once.as_secs_f64() * 1e3,
                once.as_secs_f64() * 1e6 / n as f64,
                if too_slow {
                    " too slow for criterion's 10 samples: this one run only"
                } else {
                    ""
                }
            );
            if too_slow {
                continue;
            }
            group.throughput(Throughput::Elements(n as u64));
            group.measurement_time(Duration::from_secs(if n >= 100_000 { 10 } else { 3 }));
            group.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        B::reset(&mut conn, n / 2);
                        let start = Instant::now();
                        keep(B::many(&mut conn, &keys));
                        total += start.elapsed();
                    }
                    total
                });
            });
        }
        group.finish();
        report.push_str(&format!(
            "\n{}, get_or_create_many, half the keys exist: first run of each size \
             (criterion's figures above are the medians)\n\n\
             | keys | time | us per key | |\n|---:|---:|---:|---|\n{table}",
            B::NAME
        ));
    }

    if mode.wants(&versus_id) {
        let n = if mode.measure { VERSUS } else { 100 };
        let keys = half_existing(n);
        // Warm up both (statements prepared, MariaDB's index check done).
        B::reset(&mut conn, n / 2);
        single_calls::<B>(&mut conn, &keys[..n.min(100)]);
        let mut bulk = Vec::new();
        let mut single = Vec::new();
        for round in 0..3 {
            B::reset(&mut conn, n / 2);
            let start = Instant::now();
            let results = B::many(&mut conn, &keys);
            bulk.push(start.elapsed());
            check(&results, &keys);

            B::reset(&mut conn, n / 2);
            let start = Instant::now();
            single_calls::<B>(&mut conn, &keys);
            single.push(start.elapsed());
            assert_eq!(
                B::count(&mut conn),
                n as i64,
                "the loop created the missing half"
            );
            if round == 0 && single[0] > SLOW_LOOP || !mode.measure {
                break;
            }
        }
        let runs = single.len();
        bulk.sort();
        single.sort();
        let bulk = bulk[bulk.len() / 2];
        let single = single[single.len() / 2];
        let keys_per_s = |d: Duration| n as f64 / d.as_secs_f64();
        report.push_str(&format!(
            "\n{name}, {n} keys (half exist), median of {runs} run(s)\n\n\
             | call | total | us per key | keys/s |\n|---|---:|---:|---:|\n\
             | get_or_create_many | {b:.1} ms | {bk:.2} | {bs:.0} |\n\
             | loop of get_or_create | {s:.1} ms | {sk:.2} | {ss:.0} |\n\n\
             the loop takes {x:.2}x the time of get_or_create_many\n",
            name = B::NAME,
            b = bulk.as_secs_f64() * 1e3,
            bk = bulk.as_secs_f64() * 1e6 / n as f64,
            bs = keys_per_s(bulk),
            s = single.as_secs_f64() * 1e3,
            sk = single.as_secs_f64() * 1e6 / n as f64,
            ss = keys_per_s(single),
            x = single.as_secs_f64() / bulk.as_secs_f64(),
        ));
    }
}

fn main() {
    let mode = RunMode::from_args();
    let mut c = Criterion::default().configure_from_args();
    let mut report = String::new();
    bench_backend::<Pg>(&mut c, &mode, &mut report);
    bench_backend::<Mysql>(&mut c, &mode, &mut report);
    bench_backend::<Sqlite>(&mut c, &mode, &mut report);
    c.final_summary();
    println!("\n## get_or_create_many against a loop of get_or_create\n{report}");
}
