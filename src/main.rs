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
    quiet_on_broken_pipe();
    // A closed stdout (`backdrive ... | head`) makes `println!` panic; unwinding drops the
    // unfinished outputs' temporary files, and the process then exits as a piped Unix tool
    // does (status 141, 128 + SIGPIPE) instead of printing a panic.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli::run(args)));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            // `{:#}` prints the whole chain of contexts on one line: "loading model 'x': ...".
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
        Err(payload) if is_broken_pipe(payload.as_ref()) => std::process::exit(BROKEN_PIPE_STATUS),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Exit status of a process that stopped because its reader went away.
const BROKEN_PIPE_STATUS: i32 = 141;

/// Whether a panic's payload is std's "failed printing to stdout: Broken pipe".
fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    message.contains("failed printing to stdout") && message.contains("Broken pipe")
}

/// Leaves every panic report to the default hook except the broken-pipe one, which is expected.
fn quiet_on_broken_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            default_hook(info);
        }
    }));
}
