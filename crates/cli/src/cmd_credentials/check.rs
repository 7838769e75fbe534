//! `credentials test`: check a credential against Drift step by step and store the result.
//! The checks live in `flows::check` (shared with the REST API and the web UI); this module
//! prints the steps and maps a failure to the CLI's exit codes.

use crate::common::{exit, fail, Ctx};
use flows::check::{FailureKind, TestReport};
use store::{Credential, Store};

/// Run the test for `credential` (its saved key, refreshed first when it is an expired OAuth
/// token with refresh settings), print each step, store the result, and return
/// the report plus, when the test failed, the error to exit with.
pub async fn run_test(
    ctx: &Ctx,
    store: &Store,
    credential: &Credential,
    uses: &[String],
) -> anyhow::Result<(TestReport, Option<anyhow::Error>)> {
    // The step list is progress: left out with --json (the report is printed) and -q.
    let human = !ctx.json && !ctx.quiet;
    if human {
        outln!(
            "Testing credential \"{}\" against {}",
            credential.name,
            credential.base_url
        );
    }
    // The CLI is one user's tool: any address, loopback sandbox included.
    let any = flows::AddressPolicy::AllowPrivate;
    let (report, failure) = flows::check::test_credential(store, credential, uses, any)
        .await
        .map_err(crate::cmd_credentials::store_error)?;
    for step in &report.steps {
        if step.step == "least_privilege" {
            eprintln!("warning: {}", step.detail);
        } else if human {
            let mark = match step.outcome.as_str() {
                "ok" => "✓",
                "failed" => "✗",
                _ => "?",
            };
            outln!("  {mark} {}", step.detail);
        }
    }
    let failure = failure.map(|f| {
        let code = match f.kind {
            FailureKind::Rejected | FailureKind::MissingScopes => exit::CREDENTIAL_REJECTED,
            FailureKind::RateLimited => exit::RATE_LIMITED,
            FailureKind::Config => exit::USAGE,
            FailureKind::Unreachable | FailureKind::Other => exit::FAILURE,
        };
        fail(code, f.message)
    });
    Ok((report, failure))
}
