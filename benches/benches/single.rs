//! One call at a time, on each backend, against bare Diesel:
//!
//! - `<backend>/hit`: the key exists. Floors: Diesel's `filter(email.eq(..)).first()`
//!   (`LIMIT 1`), the same with `.limit(2).load()`, which, like the library's `LIMIT 2`,
//!   would see a second matching row, and with `.load()` and no `LIMIT` (Diesel binds a
//!   `LIMIT`, which costs SQLite several times the lookup).
//! - `<backend>/miss`: the key is new. Floor: Diesel's `insert_into(..).values(..)
//!   .returning(..)` (MariaDB: `INSERT`, then `SELECT` by the key); also the hand-written
//!   error-free select-first (`SELECT`, then `INSERT .. ON CONFLICT DO NOTHING RETURNING`).
//! - on both: `get_or_create` and `get_or_create_with`.
//!
//! Criterion measures each side on its own (absolute times). Then a paired run measures
//! the sides again in alternating batches on the same connection and prints the ratios
//! to the floor, round by round, in wall time and in CPU time of the client and the
//! server (see `paired` and `CpuProbe` in the crate): those are the figures in
//! BENCHMARKS.md. Last, per backend, the statements and id values of each path of
//! `get_or_create` (hit, miss, lost race), and the id values 1,000 hits consumed.
//!
//! `cargo bench -p get-or-create-benches --bench single [-- FILTER]`

use std::time::{Duration, Instant};

use criterion::Criterion;
use get_or_create_benches::{
    existing_key, fresh_key, keep, paired, paired_table, path_costs, Backend, Call, CpuProbe,
    Mysql, Pg, RunMode, Side, Sqlite,
};

/// Rows in the table before a case starts; the hits cycle through them.
const ROWS: usize = 10_000;
/// Rounds of the paired run.
const ROUNDS: usize = 120;
/// About how long one batch of the slowest side takes in the paired run.
const BATCH_TIME: Duration = Duration::from_millis(4);

fn hit_sides<B: Backend>() -> Vec<(&'static str, Call<B::Conn>)> {
    vec![
        ("bare_first (LIMIT 1)", |c, k| keep(B::bare_first(c, k))),
        ("bare_limit2", |c, k| keep(B::bare_limit2(c, k))),
        ("bare_load (no LIMIT)", |c, k| keep(B::bare_load(c, k))),
        ("get_or_create", |c, k| {
            let (_, created) = B::get_or_create(c, k);
            assert!(!created, "a hit creates nothing");
        }),
        ("get_or_create_with", |c, k| {
            assert!(!B::get_or_create_with(c, k).1)
        }),
    ]
}

fn miss_sides<B: Backend>() -> Vec<(&'static str, Call<B::Conn>)> {
    vec![
        ("bare_insert (RETURNING)", |c, k| keep(B::bare_insert(c, k))),
        ("get_or_create", |c, k| {
            let (_, created) = B::get_or_create(c, k);
            assert!(created, "a miss must create");
        }),
        ("get_or_create_with", |c, k| {
            assert!(B::get_or_create_with(c, k).1)
        }),
        ("select_first (hand-written)", |c, k| {
            assert!(B::select_first(c, k).1)
        }),
    ]
}

fn bench_backend<B: Backend>(c: &mut Criterion, mode: &RunMode, report: &mut String) {
    let hit_id = format!("{}/hit", B::ID);
    let miss_id = format!("{}/miss", B::ID);
    let paths_id = format!("{}/paths", B::ID);
    if !mode.wants_any(&[&hit_id, &miss_id, &paths_id]) {
        return;
    }
    let Some(db) = B::create() else {
        report.push_str(&format!("\n{}: skipped\n", B::NAME));
        return;
    };
    let mut conn = db.connect();
    let probe = CpuProbe::new::<B>(&mut conn);
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
            let results = paired(&mut conn, ROUNDS, BATCH_TIME, &mut sides, probe.as_ref());
            report.push_str(&paired_table(
                &format!("{}, hit (key exists; {ROWS} rows)", B::NAME),
                "us",
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
            let results = paired(&mut conn, ROUNDS, BATCH_TIME, &mut sides, probe.as_ref());
            report.push_str(&paired_table(
                &format!("{}, miss (new key; {ROWS}+ rows)", B::NAME),
                "us",
                &results,
            ));
        }
    }

    if mode.wants(&paths_id) {
        B::reset(&mut conn, ROWS);
        let costs = path_costs(&db, |c, k| B::get_or_create(c, k));
        report.push_str(&costs.table(&format!(
            "{}, get_or_create: statements and id values per path",
            B::NAME
        )));
        let hits = 1_000;
        let before = B::ids_used(&mut conn);
        for key in keys.iter().take(hits) {
            assert!(!B::get_or_create(&mut conn, key).1);
        }
        let used = B::ids_used(&mut conn) - before;
        report.push_str(&format!(
            "\n{hits} hits of get_or_create consumed {used} id values.\n"
        ));
        assert_eq!(used, 0, "a hit consumes no id value");
    }
}

fn main() {
    let mode = RunMode::from_args();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut report = String::new();
    bench_backend::<Pg>(&mut c, &mode, &mut report);
    bench_backend::<Mysql>(&mut c, &mode, &mut report);
    bench_backend::<Sqlite>(&mut c, &mode, &mut report);
    c.final_summary();
    println!(
        "\n## Single calls: paired ratios to the floor (same connection, alternating batches)"
    );
    println!("{report}");
}
