//! Thin: parse the command line, run it, exit with its code. Printing happens in `cli`.
use clap::Parser;

fn main() {
    let args = rollbook::cli::Cli::parse();
    std::process::exit(rollbook::cli::main(args));
}
