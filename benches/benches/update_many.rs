//! `update_or_create_many` of 10,000 items, half of whose keys are stored, on each backend,
//! against a loop of the library's single `update_or_create` over the same items and
//! against the hand-written upserts of `src/update_many.rs` (each leaves a repeated key
//! with its last item's values and returns created flags in input order;
//! `check_upsert_shapes` makes sure every side agrees with the library, repeated keys
//! included, before anything is timed). Every item carries values no stored row holds, so
//! each of the 5,000 stored rows is really changed and 5,000 rows are created.
//!
//! - `<backend>/update_many`: criterion, one call per iteration, the table reset (emptied,
//!   its id counter restarted, refilled with the stored half, `ANALYZE`d) and the items
//!   copied before each call by `iter_batched`, outside the time. Every call of a side
//!   runs on the same connection.
//! - `<backend>/update_many/paired`: the same calls in rounds, the sides in turn within a
//!   round (rotating order), on one connection, the reset outside the time; keys per
//!   second of each side, its time over the library's (taken round by round: above 1, the
//!   library is faster), wall and CPU (client + server), and the id values (sequence,
//!   `AUTO_INCREMENT`) each call consumed against the rows it created.
//!
//! `cargo bench -p get-or-create-benches --bench update_many [-- FILTER]`

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use get_or_create_benches::update_many::{
    check_answer, check_upsert_shapes, loop_in_transaction, loop_of_singles, sync_items, SyncFn,
    UpsertShapes, LOOP, LOOP_TX,
};
use get_or_create_benches::{existing_key, keep, CpuProbe, Mysql, Pg, Rounds, RunMode, Sqlite};

/// Items per call; half of their keys are stored.
const KEYS: usize = 10_000;
/// Rounds of the paired run.
const ROUNDS: usize = 9;

/// The library, the loop of single calls, the shapes: the library first.
fn sides<B: UpsertShapes>() -> Vec<(&'static str, SyncFn<B::Conn>)> {
    let mut sides: Vec<(&'static str, SyncFn<B::Conn>)> = vec![
        ("update_or_create_many", |c, items| {
            B::update_or_create_many(c, items)
        }),
        (LOOP, loop_of_singles::<B>),
        (LOOP_TX, loop_in_transaction::<B>),
    ];
    sides.extend(B::upsert_shapes());
    sides
}

fn bench_backend<B: UpsertShapes>(c: &mut Criterion, mode: &RunMode, report: &mut String) {
    let criterion_id = format!("{}/update_many", B::ID);
    let paired_id = format!("{}/update_many/paired", B::ID);
    if !mode.wants_any(&[&criterion_id, &paired_id]) {
        return;
    }
    let Some(db) = B::create() else {
        report.push_str(&format!("\n{}: skipped\n", B::NAME));
        return;
    };
    let mut conn = db.connect();
    check_upsert_shapes::<B>(&mut conn);
    let n = if mode.measure { KEYS } else { 100 };
    let items = sync_items(n);
    let stored: Vec<String> = (0..n / 2).map(existing_key).collect();
    let stored: HashSet<&str> = stored.iter().map(String::as_str).collect();
    let sides = sides::<B>();

    if mode.wants(&criterion_id) {
        let mut group = c.benchmark_group(format!("{criterion_id}/{n}_keys_half_new"));
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_millis(500));
        group.throughput(Throughput::Elements(n as u64));
        // The loops take seconds a call (MariaDB: about 35 s, one fsync per commit): they
        // are measured in the paired run only.
        for &(name, call) in sides
            .iter()
            .filter(|(name, _)| ![LOOP, LOOP_TX].contains(name))
        {
            let mut own = db.connect();
            group.bench_function(name, |b| {
                b.iter_batched(
                    || {
                        B::reset(&mut conn, n / 2);
                        items.clone()
                    },
                    |items| keep(call(&mut own, items)),
                    BatchSize::PerIteration,
                );
            });
        }
        group.finish();
    }

    if mode.wants(&paired_id) {
        let rounds = if mode.measure { ROUNDS } else { 1 };
        let probe = CpuProbe::new::<B>(&mut conn);
        let mut times = Rounds::new(sides.iter().map(|s| s.0).collect());
        let mut ids = vec![Vec::new(); sides.len()];
        for round in 0..rounds {
            for k in 0..sides.len() {
                let i = (round + k) % sides.len();
                B::reset(&mut conn, n / 2);
                let input = items.clone();
                let call = sides[i].1;
                let results = times.time(i, 1, probe.as_ref(), || call(&mut conn, input));
                check_answer(sides[i].0, &results, &items, &stored, true);
                ids[i].push(B::ids_used(&mut conn) - (n / 2) as i64);
            }
        }
        let (results, waited) = times.summarize();
        let _ = write!(
            report,
            "\n{}, update_or_create_many of {n} items, half of the keys stored, one call per \
             round and side, {rounds} rounds, one connection\n\n\
             | side | keys/s (wall, median) | wall ms/call (median) | quartiles | time / \
             library's (median of rounds) | quartiles |{}\n|---|---:|---:|---|---:|---|{}\n",
            B::NAME,
            if probe.is_some() {
                " CPU ms/call (client + server) | CPU time / library's |"
            } else {
                ""
            },
            if probe.is_some() { "---:|---:|" } else { "" },
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        for r in &results {
            let _ = write!(
                report,
                "| {} | {:.0} | {:.1} | {:.1}-{:.1} | {:.3}x | {:.3}-{:.3} |",
                r.name,
                n as f64 / r.per_call[1].as_secs_f64(),
                ms(r.per_call[1]),
                ms(r.per_call[0]),
                ms(r.per_call[2]),
                r.ratio,
                r.ratio_quartiles[0],
                r.ratio_quartiles[1],
            );
            if let Some((cpu, ratio)) = r.cpu {
                let _ = write!(report, " {:.1} | {ratio:.3}x |", ms(cpu));
            }
            report.push('\n');
        }
        if let Some(waited) = waited {
            let _ = writeln!(
                report,
                "\nthe server's task waited {waited:.2} ms for a CPU per ms it ran (machine load)"
            );
        }
        let _ = writeln!(
            report,
            "\n| side | rows created | id values consumed (each round) |\n|---|---:|---|"
        );
        for ((name, _), used) in sides.iter().zip(&ids) {
            let used: Vec<String> = used.iter().map(i64::to_string).collect();
            let _ = writeln!(report, "| {name} | {} | {} |", n - n / 2, used.join(", "));
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
    println!("\n## update_or_create_many against a loop and the hand-written upserts\n{report}");
}
