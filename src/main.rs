//! The `backdrive` command line: adapter information, rollouts written as CSV, and a throughput
//! benchmark. Everything here is a thin layer over the library (`backdrive::Simulator`).

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    // Ctrl-C and SIGTERM remove the temporary files of unfinished outputs.
    if let Err(e) = backdrive::files::remove_temporaries_on_signal() {
        eprintln!("warning: {e}");
    }
    if let Err(e) = cli::run(args) {
        // `{:#}` prints the whole chain of contexts on one line: "loading model 'x': ...".
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
