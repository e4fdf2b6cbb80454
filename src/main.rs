//! Thin: parse the command line, run it, exit with its code. Printing happens in `cli`.

fn main() {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`rollbook list | head -1`) would
    // panic; the default action ends the process quietly, as other command-line tools do.
    // SAFETY: called first, before any other thread exists; SIG_DFL is a valid handler.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = rollbook::cli::parse();
    std::process::exit(rollbook::cli::main(args));
}
