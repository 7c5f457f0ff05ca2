//! `crrt`: argument parsing and wiring. The work happens in the libraries.

mod hunt;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// CRRT, the Cyber Rapid Response Toolkit.
///
/// Hunt through a victim's evidence offline with Sigma rules. The team
/// platform (`crrt serve`) is on its way; see README.md.
#[derive(Debug, Parser)]
#[command(name = "crrt", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Hunt(hunt::HuntArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hunt(args) => hunt::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
