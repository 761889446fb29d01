//! The chat session shared by the TUI (`dfa chat`), the plain REPL (`dfa chat --plain`) and
//! `dfa batch`: slash commands, conversation state, turns on a worker thread, streamed answers,
//! and writing results out.

pub mod batch;
pub mod command;
pub mod engine;
pub mod export;
pub mod palette;
pub mod plain;
pub mod session;
pub mod transcript;

pub use command::{parse, Command, CommandError};
pub use engine::Engine;
pub use session::{Outcome, RunningTurn, Session, SessionError, TurnMsg};
pub use transcript::Answer;
