//! `crrt`: argument parsing and wiring. The work happens in the libraries.

mod client;
mod feed_cache;
mod hunt;
mod intel;
mod output;
mod serve;
mod upload;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// CRRT, the Cyber Rapid Response Toolkit.
///
/// Hunt through a victim's evidence offline with Sigma rules (`crrt hunt`),
/// or run the team platform (`crrt serve`) and administer it (`crrt admin`);
/// send it evidence (`crrt upload`, resumable) and offline findings
/// (`crrt import-findings`);
/// pull partners' indicators over TAXII (`crrt intel pull`); watch the
/// victim's websites (`crrt watch`).
#[derive(Debug, Parser)]
#[command(name = "crrt", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Hunt(hunt::HuntArgs),
    Serve(serve::ServeArgs),
    Worker(serve::WorkerArgs),
    Upload(upload::UploadArgs),
    ImportFindings(serve::ImportArgs),
    Admin(serve::AdminArgs),
    Intel(intel::IntelArgs),
    Watch(watch::WatchArgs),
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // HTTPS for `intel pull`, subscriptions and watch: reqwest needs a TLS provider.
    crrt_watch::install_crypto_provider();
    let result = match cli.command {
        Command::Hunt(args) => hunt::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::Worker(args) => serve::worker(args),
        Command::Upload(args) => upload::run(args),
        Command::ImportFindings(args) => serve::import_findings(args),
        Command::Admin(args) => serve::admin(args),
        Command::Intel(args) => intel::run(args),
        Command::Watch(args) => watch::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
