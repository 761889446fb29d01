//! Command-line front end: one file per subcommand, each with its clap `Args` and a `run`.

pub mod batch;
pub mod chat;
