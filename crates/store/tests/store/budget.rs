//! Shared rate budgets (issue 18): two budgets on one backend stand in for two processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drift_client::clock::{Clock, ManualClock};
use drift_client::shared::SharedBudget;
use drift_client::RateBudget;
use store::SqliteBudget;

use crate::helpers::{new_credential, new_store, store_with};

/// Runs `tasks` tasks per budget that each take permits as fast as they are given for
/// `run`; returns the instants of every permit given within `run`, all budgets together.
async fn hammer(budgets: &[RateBudget], tasks: usize, run: Duration) -> Vec<Duration> {
    let start = Instant::now();
    let mut handles = Vec::new();
    for b in budgets {
        for _ in 0..tasks {
            let b = b.clone();
            handles.push(tokio::spawn(async move {
                let mut at = Vec::new();
                while start.elapsed() < run {
                    b.until_ready(Duration::from_secs(30)).await.unwrap();
                    let now = start.elapsed();
                    if now < run {
                        at.push(now);
                    }
                }
                at
            }));
        }
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    all
}

/// Most permits in any window of `width`.
fn peak(at: &[Duration], width: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= width {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_data_directory_stay_within_the_rate_together() {
    let (dir, a) = new_store();
    let cred = a
        .add_credential(&new_credential("prod", "tok-1-0123456789abcdef"))
        .unwrap();
    // a second Store on the same directory: another process as far as SQLite can tell
    let b = store_with(&dir, &crate::helpers::key(1));
    let budgets = [
        a.shared_budget(&cred, 1200).unwrap(),
        b.shared_budget(&cred, 1200).unwrap(),
    ];
    assert!(budgets[0].is_shared());
    let at = hammer(&budgets, 4, Duration::from_secs(3)).await;
    // 1200/min = 20/s: 3 s hold 60 slots, plus the burst (3) and permits used up to the
    // burst's tolerance early (2)
    assert!(at.len() <= 60 + 3 + 2, "{} permits in 3 s", at.len());
    assert!(at.len() >= 50, "only {} permits in 3 s", at.len());
    let in_one_second = peak(&at, Duration::from_secs(1));
    assert!(
        in_one_second <= 20 + 3,
        "{in_one_second} permits in one second"
    );
    // the use counter sees both processes (reported at each lease)
    let used = a.budget_use(&cred).await.unwrap();
    assert!(
        used.requests_last_minute >= 30,
        "use counter says {}",
        used.requests_last_minute
    );
    assert_eq!(used.paused_until, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_dropped_without_giving_back_loses_at_most_its_lease() {
    let (_dir, store) = new_store();
    let cred = store
        .add_credential(&new_credential("prod", "tok-1-0123456789abcdef"))
        .unwrap();
    let holder = store.shared_budget(&cred, 600).unwrap();
    holder.until_ready(Duration::from_secs(5)).await.unwrap();
    // killed while holding a lease of up to a second's worth (10 permits at 600/min)
    std::mem::forget(holder);
    let other = store.shared_budget(&cred, 600).unwrap();
    let started = Instant::now();
    other.until_ready(Duration::from_secs(5)).await.unwrap();
    let first = started.elapsed();
    assert!(first <= Duration::from_millis(1100), "waited {first:?}");
    // and then goes on at the budget's pace
    let at = hammer(&[other], 3, Duration::from_secs(2)).await;
    assert!(
        (15..=20 + 3 + 5).contains(&at.len()),
        "{} permits in 2 s",
        at.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_stops_gives_its_unused_permits_back() {
    let (_dir, store) = new_store();
    let cred = store
        .add_credential(&new_credential("prod", "tok-1-0123456789abcdef"))
        .unwrap();
    // 60/min: a lease is one permit... use 600/min so a lease holds 10 (one second)
    let first = store.shared_budget(&cred, 600).unwrap();
    for _ in 0..4 {
        first.until_ready(Duration::from_secs(5)).await.unwrap();
    }
    drop(first);
    let next = store.shared_budget(&cred, 600).unwrap();
    let started = Instant::now();
    next.until_ready(Duration::from_secs(5)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the returned slots are free again: waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_pause_stored_by_one_process_holds_the_others() {
    let (dir, store) = new_store();
    let cred = store
        .add_credential(&new_credential("prod", "tok-1-0123456789abcdef"))
        .unwrap();
    let clock = ManualClock::new();
    let backend: Arc<dyn SharedBudget> = Arc::new(SqliteBudget::new(store.db_path()));
    let other =
        RateBudget::shared_with_clock(600, 3, backend.clone(), &cred.id, clock.clone()).unwrap();
    let until = clock.unix_now() + Duration::from_secs(5);
    backend
        .pause(&cred.id, until.as_micros() as i64)
        .await
        .unwrap();
    let before = clock.now();
    other.until_ready(Duration::from_secs(30)).await.unwrap();
    let waited = clock.now() - before;
    assert!(
        waited >= Duration::from_millis(4900) && waited <= Duration::from_millis(5300),
        "waited {waited:?}"
    );
    assert!(other.snapshot().wait_time >= Duration::from_millis(4900));

    // on the real clock, any process on the data directory can show the pause
    let real_until = chrono::Utc::now().timestamp_millis() + 60_000;
    backend.pause(&cred.id, real_until * 1000).await.unwrap();
    let used = store_with(&dir, &crate::helpers::key(1))
        .budget_use(&cred)
        .await
        .unwrap();
    assert_eq!(used.paused_until, Some(real_until));
}

#[tokio::test]
async fn a_pause_longer_than_the_wait_cap_is_rate_limited() {
    let (_dir, store) = new_store();
    let cred = store
        .add_credential(&new_credential("prod", "tok-1-0123456789abcdef"))
        .unwrap();
    let clock = ManualClock::new();
    let backend: Arc<dyn SharedBudget> = Arc::new(SqliteBudget::new(store.db_path()));
    let until = clock.unix_now() + Duration::from_secs(300);
    backend
        .pause(&cred.id, until.as_micros() as i64)
        .await
        .unwrap();
    let b = RateBudget::shared_with_clock(600, 3, backend, &cred.id, clock).unwrap();
    let e = b.until_ready(Duration::from_secs(120)).await.unwrap_err();
    assert!(
        matches!(e, drift_client::Error::RateLimited { .. }),
        "{e:?}"
    );
}

#[test]
fn a_budget_of_zero_is_refused() {
    let (_dir, store) = new_store();
    let cred = store
        .add_credential(&new_credential("prod", "tok-1-0123456789abcdef"))
        .unwrap();
    let e = store.shared_budget(&cred, 0).unwrap_err();
    assert!(e.to_string().contains("rate_limit_per_min"), "{e}");
}

#[test]
fn only_a_postgres_url_is_taken_and_it_is_never_shown() {
    let (_dir, store) = new_store();
    let e = store
        .use_shared_budget("redis://secret-pass@localhost")
        .unwrap_err();
    assert!(e.to_string().contains("shared_budget"), "{e}");
    assert!(!e.to_string().contains("secret-pass"), "{e}");
    assert_eq!(store.shared_budget_kind(), "sqlite");
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use store::PostgresBudget;

    fn url() -> String {
        std::env::var("DRIFTBRIDGE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    fn key(test: &str) -> String {
        format!("test-{test}-{}-{}", std::process::id(), rand_suffix())
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    fn backend() -> Arc<dyn SharedBudget> {
        Arc::new(PostgresBudget::new(secrecy::SecretString::from(url())))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_machines_on_one_database_stay_within_the_rate_together() {
        let key = key("rate");
        // one backend (connection) each: two machines
        let budgets = [
            RateBudget::shared(1200, backend(), &key).unwrap(),
            RateBudget::shared(1200, backend(), &key).unwrap(),
        ];
        let at = hammer(&budgets, 4, Duration::from_secs(3)).await;
        assert!(at.len() <= 60 + 3 + 2, "{} permits in 3 s", at.len());
        assert!(at.len() >= 50, "only {} permits in 3 s", at.len());
    }

    #[tokio::test]
    async fn a_pause_in_the_database_holds_every_machine() {
        let key = key("pause");
        let clock = ManualClock::new();
        let b = backend();
        b.pause(
            &key,
            (clock.unix_now() + Duration::from_secs(5)).as_micros() as i64,
        )
        .await
        .unwrap();
        let other = RateBudget::shared_with_clock(600, 3, backend(), &key, clock.clone()).unwrap();
        let before = clock.now();
        other.until_ready(Duration::from_secs(30)).await.unwrap();
        let waited = clock.now() - before;
        assert!(
            waited >= Duration::from_millis(4900) && waited <= Duration::from_millis(5300),
            "waited {waited:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_data_directories_share_one_row_through_the_database() {
        let (_d1, one) = new_store();
        let (_d2, two) = new_store();
        one.use_shared_budget(&url()).unwrap();
        two.use_shared_budget(&url()).unwrap();
        assert_eq!(one.shared_budget_kind(), "postgres");
        let name = format!("pg-{}", rand_suffix());
        let c1 = one
            .add_credential(&new_credential(&name, "tok-1-0123456789abcdef"))
            .unwrap();
        let c2 = two
            .add_credential(&new_credential(&name, "tok-1-0123456789abcdef"))
            .unwrap();
        assert_ne!(c1.id, c2.id);
        let budgets = [
            one.shared_budget(&c1, 1200).unwrap(),
            two.shared_budget(&c2, 1200).unwrap(),
        ];
        let at = hammer(&budgets, 3, Duration::from_secs(2)).await;
        assert!(at.len() <= 40 + 3 + 2, "{} permits in 2 s", at.len());
        let used = one.budget_use(&c1).await.unwrap();
        assert!(used.requests_last_minute > 0);
        // the Debug output of the store and its errors never show the URL's password
        assert!(!format!("{one:?}").contains("postgres@"));
    }

    #[tokio::test]
    async fn an_unreachable_database_falls_back_to_local_pacing() {
        let dead: Arc<dyn SharedBudget> = Arc::new(PostgresBudget::new(
            secrecy::SecretString::from("postgres://u:hunter2@127.0.0.1:1/none".to_string()),
        ));
        let e = dead.usage("k", 0).await.unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let clock = ManualClock::new();
        let b = RateBudget::shared_with_clock(600, 3, dead, "k", clock.clone()).unwrap();
        let before = clock.now();
        for _ in 0..13 {
            b.until_ready(Duration::from_secs(30)).await.unwrap();
        }
        // 3 at once (burst), then 10 at 100 ms
        let waited = clock.now() - before;
        assert!(
            waited >= Duration::from_millis(900) && waited <= Duration::from_millis(1100),
            "paced alone at the budget: {waited:?}"
        );
    }
}
