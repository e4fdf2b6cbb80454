//! Evaluations per second of the worked example on one thread (plain std::time loop; run
//! with `cargo bench --bench evaluate`).
//!
//! For instruction-count profiling, set `ROLLBOOK_BENCH_EVALUATIONS=N`: the binary then runs
//! exactly N evaluations (no warm-up, no timing, no parsing loop), e.g.
//! `ROLLBOOK_BENCH_EVALUATIONS=2000 valgrind --tool=callgrind target/release/deps/evaluate-*`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rollbook::sizing::{evaluate, Draws, Policy, Proposal};

const EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/example-proposal.toml"
));

fn main() {
    let proposal = Proposal::from_toml_str(EXAMPLE).expect("worked example is valid");
    let policy = Policy::default();
    let now: DateTime<Utc> = "2026-05-07T14:40:00Z".parse().expect("timestamp");

    if let Ok(count) = std::env::var("ROLLBOOK_BENCH_EVALUATIONS") {
        let count: u64 = count
            .parse()
            .expect("ROLLBOOK_BENCH_EVALUATIONS is a count");
        for _ in 0..count {
            black_box(
                evaluate(black_box(&proposal), &policy, &Draws::none(), now).expect("evaluates"),
            );
        }
        println!("evaluate(worked example): {count} evaluations (fixed count, untimed)");
        return;
    }

    // Warm up caches and the branch predictor before timing.
    for _ in 0..1_000 {
        black_box(evaluate(black_box(&proposal), &policy, &Draws::none(), now).expect("evaluates"));
    }
    let budget = Duration::from_secs(2);
    let start = Instant::now();
    let mut evaluations: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            black_box(
                evaluate(black_box(&proposal), &policy, &Draws::none(), now).expect("evaluates"),
            );
        }
        evaluations += 1_000;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "evaluate(worked example): {evaluations} evaluations in {seconds:.2} s = {:.0} evaluations/s ({:.2} us each), one thread",
        evaluations as f64 / seconds,
        seconds * 1e6 / evaluations as f64
    );

    let start = Instant::now();
    let mut parses: u64 = 0;
    while start.elapsed() < Duration::from_secs(1) {
        black_box(Proposal::from_toml_str(black_box(EXAMPLE)).expect("parses"));
        parses += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "Proposal::from_toml_str(worked example): {:.0} parses/s",
        parses as f64 / seconds
    );
}
