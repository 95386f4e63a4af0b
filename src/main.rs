//! The `backdrive` command line, a thin layer over the library: `info` (the GPU adapter and
//! every adapter found), `models` (the shipped models), `rollout` (simulate a batch, write
//! trajectories as CSV or an HTML viewer), `bench` (forward throughput and gradient timings),
//! `gradcheck` (adjoint against finite differences), `train` (a policy trained through the
//! simulation) and `reproduce` (the paper's experiments and Table 1).

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    // Ctrl-C and SIGTERM remove the temporary files of unfinished outputs.
    if let Err(e) = backdrive::io::files::remove_temporaries_on_signal() {
        eprintln!("warning: {e}");
    }
    if let Err(e) = cli::run(args) {
        // `{:#}` prints the whole chain of contexts on one line: "loading model 'x': ...".
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
