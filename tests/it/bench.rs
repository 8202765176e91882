//! `tuanbot bench claims` on a small scale, both ways of loading the engine
//! and both backends: every claim answered, nothing held twice, no quota
//! exceeded. The benchmark's speed is measured by the command, not here.

use tuanbot::bench::claims::{Options, run_fresh};

use crate::helpers::pg_admin_url;

fn small(rate: u64) -> Options {
    Options {
        wishes: 40,
        orgs: 4,
        users: 3,
        claims_per_user: 6,
        quota: Some(8),
        sync: "full".into(),
        rate,
        acks: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_rush_bench_holds_every_wish_once_on_both_backends() {
    for url in [None, Some(pg_admin_url())] {
        // Closed loop, then arrivals on a schedule (open loop).
        for rate in [0, 2000] {
            let opts = small(rate);
            let r = run_fresh(url.as_deref(), &opts)
                .await
                .unwrap_or_else(|e| panic!("{url:?} rate {rate}: {e}"));
            let what = format!("{} rate {rate}: {r:?}", r.backend);
            assert_eq!(r.claims_attempted, 4 * 3 * 6, "{what}");
            assert_eq!(r.errors, 0, "{what}");
            assert_eq!(r.double_claims, 0, "{what}");
            assert_eq!(r.quota_violations, 0, "{what}");
            assert!(r.claims_ok >= 1 && r.claims_ok <= 32, "{what}");
            assert_eq!(r.rate_per_s, rate, "{what}");
            assert_eq!(r.backend, if url.is_some() { "postgres" } else { "sqlite" });
        }
    }
}
