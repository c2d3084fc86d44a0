//! The d1snap command-line tool: parses arguments, calls the engine and renders its reports.

mod cli;
mod commands;
mod progress;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit codes, documented in docs/commands.md.
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// The command failed: invalid input, I/O error, missing snapshot.
    pub const FAILURE: u8 = 1;
    // clap exits with 2 on a usage error.
    /// Damaged or missing repository data was found, or a source differs from its snapshot.
    pub const INTEGRITY: u8 = 3;
    /// A threshold was breached: a drill's restore or verification was too slow, or
    /// `status` or `run` found a stale backup or a projected rollback over its limit.
    pub const THRESHOLD: u8 = 4;
    /// `migrate` failed at a step: 10 pre-migration snapshot, 11 applying a migration,
    /// 12 checks, 13 post-migration snapshot; the database was restored and its root proven.
    pub const MIGRATE_PRE_SNAPSHOT: u8 = 10;
    pub const MIGRATE_APPLY: u8 = 11;
    pub const MIGRATE_CHECK: u8 = 12;
    pub const MIGRATE_POST_SNAPSHOT: u8 = 13;
    /// `migrate` could not put the database back: restore the pre-migration snapshot by hand.
    pub const MIGRATE_ROLLBACK: u8 = 14;
}

/// Restores the default action of SIGPIPE, which Rust programs ignore, so that output piped
/// into `head` ends the process quietly, as for other Unix tools, instead of a panic in
/// `println!`. Every command prints only after its work is stored.
#[cfg(unix)]
fn exit_quietly_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler and runs before
    // any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Fixes glibc's threshold for serving allocations with their own memory map at 1 MiB.
/// Pack buffers of about 16 MiB are filled on one thread and freed on another. With its
/// default, glibc raises the threshold after such a free and keeps later buffers in
/// per-thread heaps that do not shrink: a 1 GiB snapshot peaked at 111 MiB instead of 45 MiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_buffers_to_the_system() {
    // SAFETY: mallopt takes two integers and only changes allocator settings; it runs before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    return_large_buffers_to_the_system();
    #[cfg(unix)]
    exit_quietly_on_closed_pipe();
    let cli = Cli::parse();
    // The daemon logs each job's start and end, so it logs at info level by default.
    init_logging(cli.verbose, matches!(cli.command, Command::Daemon(_)));
    let context = commands::Context::new(cli.repo.clone(), cli.remote.clone(), cli.pack_size, cli.json);
    let result = match &cli.command {
        Command::Snapshot(args) => commands::snapshot::run(&context, args),
        Command::List => commands::list::run(&context),
        Command::Show(args) => commands::show::run(&context, args),
        Command::Verify(args) => commands::verify::run(&context, args),
        Command::Diff(args) => commands::diff::run(&context, args),
        Command::Restore(args) => commands::restore::run(&context, args),
        Command::Migrate(args) => commands::migrate::run(&context, args),
        Command::Drill(args) => commands::drill::run(&context, args),
        Command::Forget(args) => commands::forget::run(&context, args),
        Command::Prune(args) => commands::prune::run(&context, args),
        Command::Run(args) => commands::run::run(&context, args),
        Command::Daemon(args) => commands::daemon::run(&context, args),
        Command::Status(args) => commands::status::run(&context, args),
        Command::Report(args) => commands::report::run(&context, args),
    };
    if !cli.json && let Some(counts) = commands::requests() {
        render::print_requests(&counts, result.is_ok());
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let integrity = error
                .chain()
                .any(|cause| cause.downcast_ref::<d1snap_engine::Error>().is_some_and(|e| e.is_integrity()));
            render::error(&error, cli.json);
            ExitCode::from(if integrity { exit::INTEGRITY } else { exit::FAILURE })
        }
    }
}

fn init_logging(verbose: u8, daemon: bool) {
    let default = match (verbose, daemon) {
        (0, false) => "warn",
        (0, true) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let mut filter =
        tracing_subscriber::EnvFilter::try_from_env("D1SNAP_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // The AWS SDK and the HTTP stacks log signed requests, headers and URLs at debug and
    // trace level. They carry the access key id, session tokens and the webhook URL, a
    // secret, so those logs are capped here whatever D1SNAP_LOG requests.
    for directive in ["aws_sigv4=info", "aws_smithy_runtime=info", "aws_smithy_runtime_api=info", "aws_smithy_http_client=info", "aws_sdk_s3=info", "aws_config=info", "aws_runtime=info", "hyper=info", "hyper_util=info", "h2=info", "rustls=warn", "ureq=warn", "ureq_proto=warn"] {
        filter = filter.add_directive(directive.parse().expect("valid log directive"));
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).with_target(false).init();
}
