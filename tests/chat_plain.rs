//! `dfa chat --plain`: the REPL driven through a Read/Write pair, as with piped stdin. The
//! engine is a small deterministic stand-in; the session, commands and printing are real.
//! (Once the lead wires the engine into the binary, a run of the real `dfa chat --plain` with
//! piped stdin joins these.)

#[path = "support/scripted_analyzer.rs"]
mod scripted_analyzer;

use std::io::Cursor;
use std::sync::Arc;

use dfa::analysis::Analyzer;
use dfa::chat::engine::Engine;
use dfa::chat::plain::run_plain;
use dfa::chat::session::{AnalyzerLoader, Session};
use scripted_analyzer::{face_image, ScriptedAnalyzer};

fn loader() -> Arc<AnalyzerLoader> {
    Arc::new(
        |_: Option<&str>, adapter: Option<&str>| -> anyhow::Result<Box<dyn Analyzer>> {
            match adapter {
                Some("broken") => anyhow::bail!("adapter broken not found"),
                _ => Ok(Box::new(ScriptedAnalyzer::new())),
            }
        },
    )
}

fn run(script: &str) -> (String, usize, Session) {
    let mut session = Session::default();
    let mut engine = Engine::start_loading(None, None, loader());
    let mut out = Vec::new();
    let errors = run_plain(
        &mut session,
        &mut engine,
        Cursor::new(script.to_string()),
        &mut out,
        false,
    )
    .unwrap();
    (String::from_utf8(out).unwrap(), errors, session)
}

#[test]
fn piped_session_prints_verdict_then_marked_explanation() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("face.png");
    face_image(40, 50, 220).save(&img).unwrap();
    let json = dir.path().join("out/r.json");
    let save = dir.path().join("saved");
    let script = format!(
        "# a comment\n/image {}\n/ask\n/region left eye\n/masks off\nwhat about it?\n/export json {}\n/save {}\n/quit\n/ask never reached\n",
        img.display(),
        json.display(),
        save.display()
    );
    let (out, errors, session) = run(&script);
    assert_eq!(errors, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    // The verdict line comes first, then the explanation with [n] markers.
    let v = lines
        .iter()
        .position(|l| *l == "verdict: face 1: FAKE  p(fake)=0.86  type: warp")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        lines[v + 1],
        "The skin is smooth, but the left eye [1] and the mouth [2] show warping at their edges."
    );
    assert!(lines[v + 2].starts_with("  [1] the left eye — region left eye, "));
    assert!(out.contains("region set to left eye"));
    assert!(out.contains("About the left eye: The skin"));
    // With masks off, the second answer lists no masks.
    assert_eq!(out.matches("  [1] the left eye").count(), 1);
    assert_eq!(session.history.len(), 2);
    assert!(!out.contains("never reached"));
    // Exports.
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(exported["schema"], "dfa.report/1");
    assert_eq!(
        exported["faces"][0]["segments"][0]["phrase"],
        "the left eye"
    );
    assert_eq!(exported["conversation"].as_array().unwrap().len(), 2);
    let md = std::fs::read_to_string(save.join("report.md")).unwrap();
    assert!(md.contains("— fake (P(fake) = 0.86)"), "{md}");
    assert!(md.contains("## Conversation") && md.contains("[png](face1-mask1.png)"));
    assert!(save.join("overlay.png").exists());
    assert!(save.join("face1-mask1.png").exists());
}

#[test]
fn bad_lines_are_one_line_errors_and_the_repl_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("face.png");
    face_image(40, 50, 20).save(&img).unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    let script = format!(
        "what is this?\n/image {}\n/image {}\n/frobnicate\n/region 1,2,3\n/masks 7\n/save\n\
         /image {}\n/save\n/region elbow\nand now?\n/adapter broken\n/region off\n/seed 5\ntell me\n",
        dir.path().join("missing.png").display(),
        text.display(),
        img.display(),
    );
    let (out, errors, session) = run(&script);
    let error_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors, error_lines.len(), "{out}");
    // "/region elbow" fails at once with the concept tree built in; without it the engine
    // rejects the question after it. Either way: one error.
    assert_eq!(errors, 11, "{out}");
    for expected in [
        "error: no image loaded: use /image PATH first",
        "error: cannot open image",
        "is not an image dfa can read",
        "error: unknown command /frobnicate",
        "error: /region: expected 2 (a point) or 4 (a box) numbers",
        "error: there is no mask [7]",
        "error: nothing to save yet: ask a question first",
        "unknown region \"elbow\"",
        "error: no model: adapter broken not found",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    assert!(session.image.is_some());
    assert_eq!(session.gen.seed, 5);
    assert!(session.region.is_none());
}

#[test]
fn real_verdict_has_no_masks() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("real.png");
    face_image(30, 30, 10).save(&img).unwrap();
    let (out, errors, _) = run(&format!("/image {}\n/ask\n", img.display()));
    assert_eq!(errors, 0, "{out}");
    assert!(
        out.contains("verdict: face 1: REAL  p(fake)=0.04\n"),
        "{out}"
    );
    assert!(!out.contains("[1]"));
}

/// The real binary with piped stdin (plain mode is automatic when stdin is not a terminal).
#[test]
fn real_binary_with_piped_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let image = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/solvay-1927.png");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dfa"))
        .args(["chat", "--plain", image])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"/face 1\nis this face manipulated?\n/frobnicate\n/quit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("loaded "), "{stdout}");
    let verdict = stdout
        .lines()
        .position(|l| l.starts_with("verdict: face 1: "))
        .unwrap_or_else(|| panic!("no verdict line in\n{stdout}"));
    assert!(stdout
        .lines()
        .nth(verdict + 1)
        .is_some_and(|l| !l.is_empty()));
    assert!(stdout.contains("error: unknown command /frobnicate"));
    // One failed line: exit status 1 with a one-line message on stderr.
    assert!(!out.status.success());
}
