//! `credentials test`: check a credential against Drift step by step and store the result.
//! The checks live in `flows::check` (shared with the REST API and the web UI); this module
//! prints the steps and maps a failure to the CLI's exit codes.

use crate::common::{exit, fail, Ctx};
use flows::check::{FailureKind, TestFailure, TestReport};
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
    let (report, failure) =
        flows::check::test_credential(store, credential, uses, any, flows::check::Edge::Cli)
            .await
            .map_err(crate::cmd_credentials::store_error)?;
    print_steps(ctx, &report);
    let failure = failure.map(|f| fail(exit_code(&f), f.message_for(flows::check::Edge::Cli)));
    Ok((report, failure))
}

/// Print the report's steps (left out with --json and -q); the least-privilege warning goes
/// to stderr always.
pub fn print_steps(ctx: &Ctx, report: &TestReport) {
    let human = !ctx.json && !ctx.quiet;
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
}

/// The exit code of a failed test.
pub fn exit_code(f: &TestFailure) -> u8 {
    match f.kind {
        FailureKind::Rejected | FailureKind::MissingScopes => exit::CREDENTIAL_REJECTED,
        FailureKind::RateLimited => exit::RATE_LIMITED,
        FailureKind::Config => exit::USAGE,
        FailureKind::Unreachable | FailureKind::Other => exit::FAILURE,
    }
}
