//! The `lrpc` command line: clap subcommands over the library, nothing more.

mod cli;

#[global_allocator]
static ALLOCATOR: lrpc::alloc::HugePages = lrpc::alloc::HugePages;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, outermost first.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Dies quietly on a closed pipe (`lrpc inspect ... | head`), as Unix tools do, instead of
/// Rust's default of ignoring SIGPIPE, which turns the failed write into a panic in `println!`.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default has no memory-safety preconditions;
    // it runs first in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
