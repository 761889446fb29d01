//! End to end: the real `dfa chat` inside tmux, driven with send-keys and read with
//! capture-pane: load an image, ask, see the verdict line, `/region left eye`, ask again, `/quit`.
//!
//! Ignored until the lead wires `dfa chat` and the engine into the binary (`load_analyzer` is a
//! stub that errors today). Run with `cargo test --release --test tmux_e2e -- --ignored`.
//! Skips with a message when tmux is not installed.

use std::process::Command;
use std::time::{Duration, Instant};

struct Session(String);

impl Session {
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(args).output().expect("tmux runs")
    }

    fn send_line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.0, "-l", text]);
        self.tmux(&["send-keys", "-t", &self.0, "Enter"]);
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", &self.0]).stdout)
            .into_owned()
    }

    /// Wait until the screen satisfies `ok` (a generous limit guards against a hang; this is
    /// not a speed check).
    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if start.elapsed() > limit {
                panic!("waited {limit:?} for {what}; the screen shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", &self.0]).status.success()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

#[test]
fn chat_in_tmux_loads_asks_and_quits() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed: skipping the tmux end-to-end test");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_dfa");
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/solvay-1927.png");
    let s = Session(format!("dfa-e2e-{}", std::process::id()));
    let status = Command::new("tmux")
        .args([
            "-u",
            "new-session",
            "-d",
            "-s",
            &s.0,
            "-x",
            "100",
            "-y",
            "30",
        ])
        .arg(format!("{bin} chat"))
        .status()
        .expect("tmux starts");
    assert!(status.success());

    let long = Duration::from_secs(600);
    s.wait_for(
        "the chat screen and a loaded model",
        Duration::from_secs(300),
        |sc| sc.contains("dfa chat") && sc.contains("(ready)"),
    );
    s.send_line(&format!("/image {image}"));
    s.wait_for("the image title", Duration::from_secs(30), |sc| {
        sc.contains("solvay-1927.png")
    });
    // One face keeps the answer short.
    s.send_line("/face 1");
    s.send_line("is this face manipulated?");
    // The verdict comes first; wait for the whole answer (the status line no longer says
    // "answering…").
    let screen = s.wait_for("the verdict line and the end of the answer", long, |sc| {
        sc.lines().any(|l| l.starts_with("verdict: face 1: ")) && !sc.contains("answering")
    });
    assert!(!screen.contains("error:"), "{screen}");

    s.send_line("/region left eye");
    s.wait_for("the region in the title", Duration::from_secs(30), |sc| {
        sc.contains("region: left eye")
    });
    s.send_line("what about this region?");
    // Two answers in the transcript plus the verdict line, and nothing running any more.
    s.wait_for("a second answer", long, |sc| {
        sc.matches("p(fake)=").count() >= 3 && !sc.contains("answering")
    });

    s.send_line("/quit");
    let start = Instant::now();
    while s.alive() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "dfa chat did not quit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
