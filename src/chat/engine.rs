//! The analyzer a chat talks to, loaded (and reloaded for `/adapter`) through a loader function,
//! optionally on a background thread so that the TUI shows up at once.

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use crate::analysis::Analyzer;
use crate::chat::session::AnalyzerLoader;

enum State {
    Loading(Receiver<Result<Arc<dyn Analyzer>, String>>),
    Ready(Arc<dyn Analyzer>),
    Failed(String),
}

/// The engine slot of a chat.
pub struct Engine {
    model: Option<String>,
    adapter: Option<String>,
    loader: Arc<AnalyzerLoader>,
    state: State,
}

impl Engine {
    /// An engine that is already loaded (tests, embedding).
    pub fn ready(analyzer: Arc<dyn Analyzer>, loader: Arc<AnalyzerLoader>) -> Self {
        Self {
            model: None,
            adapter: None,
            loader,
            state: State::Ready(analyzer),
        }
    }

    /// Start loading `(model, adapter)` on a background thread.
    pub fn start_loading(
        model: Option<String>,
        adapter: Option<String>,
        loader: Arc<AnalyzerLoader>,
    ) -> Self {
        let mut engine = Self {
            model,
            adapter: None,
            loader,
            state: State::Failed(String::new()),
        };
        engine.reload(adapter);
        engine
    }

    /// Load again with another adapter (in the background); the old engine is dropped.
    pub fn reload(&mut self, adapter: Option<String>) {
        let (tx, rx) = mpsc::channel();
        let (loader, model) = (self.loader.clone(), self.model.clone());
        self.adapter = adapter.clone();
        std::thread::spawn(move || {
            let loaded = loader(model.as_deref(), adapter.as_deref())
                .map(Arc::from)
                .map_err(|e| format!("{e:#}").replace('\n', " "));
            let _ = tx.send(loaded);
        });
        self.state = State::Loading(rx);
    }

    /// Pick up a finished background load; true when the state changed.
    pub fn poll(&mut self) -> bool {
        let State::Loading(rx) = &self.state else {
            return false;
        };
        self.state = match rx.try_recv() {
            Ok(Ok(a)) => State::Ready(a),
            Ok(Err(e)) => State::Failed(e),
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => State::Failed("the model loader crashed".into()),
        };
        true
    }

    /// Block until a background load is finished.
    pub fn wait(&mut self) {
        if let State::Loading(rx) = &self.state {
            self.state = match rx.recv() {
                Ok(Ok(a)) => State::Ready(a),
                Ok(Err(e)) => State::Failed(e),
                Err(_) => State::Failed("the model loader crashed".into()),
            };
        }
    }

    pub fn is_loading(&self) -> bool {
        matches!(self.state, State::Loading(_))
    }

    /// The analyzer, or a one-line reason why there is none.
    pub fn analyzer(&self) -> Result<Arc<dyn Analyzer>, String> {
        match &self.state {
            State::Ready(a) => Ok(a.clone()),
            State::Loading(_) => Err("the model is still loading; try again in a moment".into()),
            State::Failed(e) => Err(format!("no model: {e}")),
        }
    }

    /// A compact description for title bars: "dfa-tiny (ready)", "m+adapter (loading…)".
    pub fn short(&self) -> String {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Loading(_) => "loading…",
            State::Failed(_) => "no model",
        };
        let mut name = self.model.as_deref().unwrap_or("dfa-tiny").to_string();
        if let Some(a) = &self.adapter {
            name.push('+');
            name.push_str(a);
        }
        format!("{name} ({state})")
    }

    /// A short description for status lines: "model default, adapter none (ready)".
    pub fn describe(&self) -> String {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Loading(_) => "loading…",
            State::Failed(_) => "not loaded",
        };
        format!(
            "model {}, adapter {} ({state})",
            self.model.as_deref().unwrap_or("dfa-tiny"),
            self.adapter.as_deref().unwrap_or("none")
        )
    }
}
