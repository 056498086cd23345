//! `get_or_create_many` of 10,000 keys, half of which exist, on each backend, against the
//! hand-written shapes of `src/bulk.rs` (each handles keys repeated in the input and
//! returns created flags in input order; `check_shapes` makes sure they agree with the
//! library before anything is timed):
//!
//! - `<backend>/bulk`: criterion, one call per iteration, the table reset (emptied,
//!   refilled with the existing half, `ANALYZE`d) before each call by `iter_batched` and
//!   left out of the time. Every call of a side runs on the same connection, as in an
//!   importer's loop: criterion's warm-up calls and samples are calls 1, 2, 3, .. of that
//!   loop.
//! - `<backend>/bulk/paired`: the same calls in rounds, the sides in turn within a round
//!   (rotating order), on one connection; the ratio of each side to the library is taken
//!   round by round. Also the id values (sequence, `AUTO_INCREMENT`) each call consumed
//!   against the rows it created.
//! - `<backend>/bulk/repeat`: each side on a fresh connection of its own, called ten times,
//!   the table reset and analyzed (on another connection) before each call; each call's
//!   time. This is where a statement kept prepared shows its plan turning generic after
//!   five executions (PostgreSQL).
//!
//! `cargo bench -p get-or-create-benches --bench bulk [-- FILTER]`

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use get_or_create_benches::bulk::{check_shapes, half_existing, BulkFn, Shapes};
use get_or_create_benches::{keep, paired_table, CpuProbe, Mysql, Pg, Rounds, RunMode, Sqlite};

/// Keys per call; half exist.
const KEYS: usize = 10_000;
/// Rounds of the paired run.
const ROUNDS: usize = 9;
/// Calls per side in the repeated-call loop.
const REPEAT: usize = 10;

/// The library and the shapes, the library first.
fn sides<B: Shapes>() -> Vec<(&'static str, BulkFn<B::Conn>)> {
    let mut sides: Vec<(&'static str, BulkFn<B::Conn>)> =
        vec![("get_or_create_many", |c, k| B::get_or_create_many(c, k))];
    sides.extend(B::shapes());
    sides
}

/// Checks a call's answer: one per key, in input order, the new half created.
fn check(results: &[(get_or_create_benches::User, bool)], keys: &[String]) {
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_backend<B: Shapes>(c: &mut Criterion, mode: &RunMode, report: &mut String) {
    let criterion_id = format!("{}/bulk", B::ID);
    let paired_id = format!("{}/bulk/paired", B::ID);
    let repeat_id = format!("{}/bulk/repeat", B::ID);
    if !mode.wants_any(&[&criterion_id, &paired_id, &repeat_id]) {
        return;
    }
    let Some(db) = B::create() else {
        report.push_str(&format!("\n{}: skipped\n", B::NAME));
        return;
    };
    let mut conn = db.connect();
    check_shapes::<B>(&mut conn);
    let n = if mode.measure { KEYS } else { 100 };
    let keys = half_existing(n);
    let sides = sides::<B>();

    if mode.wants(&criterion_id) {
        let mut group = c.benchmark_group(format!("{criterion_id}/{n}_keys_half_new"));
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_millis(500));
        group.throughput(Throughput::Elements(n as u64));
        for &(name, call) in &sides {
            let mut own = db.connect();
            group.bench_function(name, |b| {
                b.iter_batched_ref(
                    || B::reset(&mut conn, n / 2),
                    |()| keep(call(&mut own, &keys)),
                    BatchSize::PerIteration,
                );
            });
        }
        group.finish();
    }

    if mode.wants(&paired_id) {
        let rounds = if mode.measure { ROUNDS } else { 1 };
        let probe = CpuProbe::new::<B>(&mut conn);
        let names: Vec<&'static str> = sides.iter().map(|s| s.0).collect();
        let mut times = Rounds::new(names.clone());
        let mut ids = vec![Vec::new(); sides.len()];
        for round in 0..rounds {
            for k in 0..sides.len() {
                let i = (round + k) % sides.len();
                B::reset(&mut conn, n / 2);
                let call = sides[i].1;
                let results = times.time(i, 1, probe.as_ref(), || call(&mut conn, &keys));
                check(&results, &keys);
                ids[i].push(B::ids_used(&mut conn) - (n / 2) as i64);
            }
        }
        let results = times.summarize();
        report.push_str(&paired_table(
            &format!(
                "{}, {n} keys, half new, one call per round and side, {rounds} rounds, one \
                 connection",
                B::NAME
            ),
            "ms",
            &results,
        ));
        let best = results.0[1..]
            .iter()
            .min_by(|a, b| a.ratio.total_cmp(&b.ratio))
            .expect("a shape");
        let _ = writeln!(
            report,
            "\nfastest hand-written shape (wall): {} at {:.3}x the library's time: the library \
             runs at {:.3}x its throughput",
            best.name, best.ratio, best.ratio
        );
        if let Some(best) = results.0[1..]
            .iter()
            .filter_map(|r| r.cpu.map(|(_, ratio)| (r.name, ratio)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
        {
            let _ = writeln!(
                report,
                "fastest hand-written shape (CPU): {} at {:.3}x the library's CPU time\n",
                best.0, best.1
            );
        }
        let _ = writeln!(
            report,
            "| side | rows created | id values consumed |\n|---|---:|---:|"
        );
        for (name, used) in names.iter().zip(&ids) {
            let _ = writeln!(report, "| {name} | {} | {} |", n - n / 2, used[0]);
        }
    }

    if mode.wants(&repeat_id) {
        let calls = if mode.measure { REPEAT } else { 2 };
        let mut own: Vec<B::Conn> = sides.iter().map(|_| db.connect()).collect();
        let probes: Vec<Option<CpuProbe>> = own.iter_mut().map(CpuProbe::new::<B>).collect();
        let mut times = vec![Vec::new(); sides.len()];
        let mut cpu = vec![Vec::new(); sides.len()];
        for _ in 0..calls {
            for (i, &(_, call)) in sides.iter().enumerate() {
                B::reset(&mut conn, n / 2);
                let before = probes[i].as_ref().map(CpuProbe::read);
                let start = Instant::now();
                let results = call(&mut own[i], &keys);
                times[i].push(start.elapsed());
                if let (Some(probe), Some((cpu0, _))) = (&probes[i], before) {
                    cpu[i].push(Duration::from_nanos(probe.read().0.saturating_sub(cpu0)));
                }
                check(&results, &keys);
            }
        }
        repeat_table::<B>(report, n, "wall", &sides, &times);
        if cpu.iter().all(|c| c.len() == calls) {
            repeat_table::<B>(report, n, "CPU (client + server)", &sides, &cpu);
        }
    }
}

/// The table of the repeated calls: one row per call, one column per side, in ms.
fn repeat_table<B: Shapes>(
    report: &mut String,
    n: usize,
    what: &str,
    sides: &[(&'static str, BulkFn<B::Conn>)],
    times: &[Vec<Duration>],
) {
    let calls = times[0].len();
    {
        let _ = write!(
            report,
            "\n{}, {n} keys, half new: {calls} calls per side, each side on a fresh \
             connection of its own, the table reset and analyzed before each call: {what} ms\n\n\
             | call |",
            B::NAME
        );
        for (name, _) in sides {
            let _ = write!(report, " {name} |");
        }
        let _ = write!(report, "\n|---:|");
        for _ in sides {
            report.push_str("---:|");
        }
        report.push('\n');
        for call in 0..calls {
            let _ = write!(report, "| {} |", call + 1);
            for side in times {
                let _ = write!(report, " {:.1} |", ms(side[call]));
            }
            report.push('\n');
        }
        if calls > 5 {
            for (label, range) in [("median 1-5", 0..5), ("median 6-10", 5..calls)] {
                let _ = write!(report, "| {label} |");
                for side in times {
                    let mut part = side[range.clone()].to_vec();
                    part.sort();
                    let _ = write!(report, " {:.1} |", ms(part[part.len() / 2]));
                }
                report.push('\n');
            }
        }
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
    println!("\n## get_or_create_many against the hand-written shapes\n{report}");
}
