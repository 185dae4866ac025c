//! The `billing-admin` binary: parses the command line (usage errors exit 2 before any call),
//! builds the services from the environment, runs the subcommand, prints its report.

use std::process::ExitCode;

use billing_admin::{Cli, Exit, Ops};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    common::telemetry::init_on_stderr();
    let cli = Cli::parse();
    let ops = match Ops::from_env().await {
        Ok(ops) => ops,
        Err(err) => return fail(&cli, Exit::Usage, &err.to_string()),
    };
    match billing_admin::run(&cli, &ops, &mut std::io::stderr()).await {
        Ok(report) if cli.json => println!("{}", report.json),
        Ok(report) => print!("{}", report.text),
        Err(failure) => return fail(&cli, failure.exit, &failure.message),
    }
    ExitCode::SUCCESS
}

/// Reports `message` (on stderr, or as JSON on stdout with `--json`) and exits with `exit`.
fn fail(cli: &Cli, exit: Exit, message: &str) -> ExitCode {
    match cli.json {
        true => println!(
            "{}",
            serde_json::json!({"error": message, "exit": exit as u8})
        ),
        false => eprintln!("billing-admin: {message}"),
    }
    ExitCode::from(exit as u8)
}
