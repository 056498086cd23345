//! One `get_or_create` at a time, on each backend, against bare Diesel and against the
//! hand-written select-then-insert:
//!
//! - `<backend>/hit`: the key exists. Floor: Diesel's `filter(email.eq(..)).first()`;
//!   also `bare_load`, the same without `.first()`'s `LIMIT ?`.
//! - `<backend>/miss`: the key is new. Floor: Diesel's `INSERT .. RETURNING` (MariaDB:
//!   `INSERT`, then `SELECT` by the key).
//! - on both: `get_or_create_with` (lazy defaults: on PostgreSQL the select-first path),
//!   `django` (`SELECT`; if nothing, `BEGIN; INSERT; COMMIT`) and `transaction`
//!   (`conn.transaction(|c| select.optional(), else insert)`).
//!
//! Criterion measures each side on its own (absolute times). Then a paired run measures
//! the sides again in alternating batches on the same connection and prints the ratios
//! to the floor (see `paired` in the crate); those are the figures in BENCHMARKS.md.
//!
//! `cargo bench -p get-or-create-benches --bench single [-- FILTER]`

use std::time::{Duration, Instant};

use criterion::Criterion;
use get_or_create_benches::{
    existing_key, fresh_key, keep, paired, paired_table, Backend, Mysql, Pg, RunMode, Side, Sqlite,
};

/// Rows in the table before a case starts; the hits cycle through them.
const ROWS: usize = 10_000;
/// Rounds of the paired run.
const ROUNDS: usize = 150;
/// About how long one batch of the slowest side takes in the paired run.
const BATCH_TIME: Duration = Duration::from_millis(5);

type Call<C> = fn(&mut C, &str);

fn hit_sides<B: Backend>() -> [(&'static str, Call<B::Conn>); 6] {
    [
        ("bare_select", |c, k| keep(B::bare_select(c, k))),
        ("bare_load", |c, k| keep(B::bare_load(c, k))),
        ("get_or_create", |c, k| keep(B::get_or_create(c, k))),
        ("get_or_create_with", |c, k| {
            keep(B::get_or_create_with(c, k))
        }),
        ("django", |c, k| keep(B::django(c, k))),
        ("transaction", |c, k| {
            keep(B::select_then_insert_in_transaction(c, k))
        }),
    ]
}

fn miss_sides<B: Backend>() -> [(&'static str, Call<B::Conn>); 5] {
    [
        ("bare_insert", |c, k| keep(B::bare_insert(c, k))),
        ("get_or_create", |c, k| {
            let (_, created) = B::get_or_create(c, k);
            assert!(created, "a miss must create");
        }),
        ("get_or_create_with", |c, k| {
            assert!(B::get_or_create_with(c, k).1)
        }),
        ("django", |c, k| assert!(B::django(c, k).1)),
        ("transaction", |c, k| {
            assert!(B::select_then_insert_in_transaction(c, k).1)
        }),
    ]
}

fn bench_backend<B: Backend>(c: &mut Criterion, mode: &RunMode, report: &mut String) {
    let hit_id = format!("{}/hit", B::ID);
    let miss_id = format!("{}/miss", B::ID);
    if !mode.wants(&hit_id) && !mode.wants(&miss_id) {
        return;
    }
    let Some(db) = B::create() else {
        report.push_str(&format!("\n{}: skipped\n", B::NAME));
        return;
    };
    let mut conn = db.connect();
    let keys: Vec<String> = (0..ROWS).map(existing_key).collect();

    if mode.wants(&hit_id) {
        B::reset(&mut conn, ROWS);
        let mut group = c.benchmark_group(&hit_id);
        for (name, call) in hit_sides::<B>() {
            group.bench_function(name, |b| {
                let mut i = 0;
                b.iter(|| {
                    call(&mut conn, &keys[i % ROWS]);
                    i += 1;
                });
            });
        }
        group.finish();
        if mode.measure {
            let mut sides: Vec<Side<'_, B::Conn>> = hit_sides::<B>()
                .into_iter()
                .map(|(name, call)| {
                    let keys = &keys;
                    let mut i = 0;
                    Side::new(name, move |c| {
                        call(c, &keys[i % ROWS]);
                        i += 1;
                    })
                })
                .collect();
            let results = paired(&mut conn, ROUNDS, BATCH_TIME, &mut sides);
            report.push_str(&paired_table(
                &format!("{}, hit (key exists; {ROWS} rows)", B::NAME),
                &results,
            ));
        }
    }

    if mode.wants(&miss_id) {
        let mut group = c.benchmark_group(&miss_id);
        for (name, call) in miss_sides::<B>() {
            // Every side starts from the same table and grows it by its own inserts.
            B::reset(&mut conn, ROWS);
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let fresh: Vec<String> = (0..iters).map(|_| fresh_key()).collect();
                    let start = Instant::now();
                    for key in &fresh {
                        call(&mut conn, key);
                    }
                    start.elapsed()
                });
            });
        }
        group.finish();
        if mode.measure {
            // Equal batches in turn: every side adds as many rows as the others.
            B::reset(&mut conn, ROWS);
            let mut sides: Vec<Side<'_, B::Conn>> = miss_sides::<B>()
                .into_iter()
                .map(|(name, call)| Side::new(name, move |c| call(c, &fresh_key())))
                .collect();
            let results = paired(&mut conn, ROUNDS, BATCH_TIME, &mut sides);
            report.push_str(&paired_table(
                &format!("{}, miss (new key; {ROWS}+ rows)", B::NAME),
                &results,
            ));
        }
    }
}

fn main() {
    let mode = RunMode::from_args();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut report = String::new();
    bench_backend::<Pg>(&mut c, &mode, &mut report);
    bench_backend::<Mysql>(&mut c, &mode, &mut report);
    bench_backend::<Sqlite>(&mut c, &mode, &mut report);
    c.final_summary();
    if mode.measure {
        println!("\n## Paired runs: ratios to the floor, same connection, alternating batches");
        println!("{report}");
    }
}
