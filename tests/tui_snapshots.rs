//! The TUI rendered into ratatui's TestBackend: transcript with coloured grounded phrases,
//! mask legend, verdict line, help screen, error line — text (insta snapshots) and cell colours.
//! Events are fed into the app state directly, as the worker thread would.

#[path = "support/scripted_analyzer.rs"]
mod scripted_analyzer;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dfa::analysis::Analyzer;
use dfa::chat::engine::Engine;
use dfa::chat::palette::PALETTE;
use dfa::chat::session::Session;
use dfa::tui::app::App;
use dfa::tui::image_pane::ImagePane;
use dfa::tui::ui::draw;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;
use ratatui_image::picker::Picker;
use scripted_analyzer::{face_image, ScriptedAnalyzer};

fn app_with_image(dir: &Path, red: u8) -> App {
    let path = dir.join("face.png");
    face_image(64, 80, red).save(&path).unwrap();
    let mut session = Session::default();
    session.load_image(&path).unwrap();
    App::new(session, None, ImagePane::new(Picker::halfblocks()))
}

/// Run the analyzer synchronously and feed its events to the app, like the event loop does.
fn feed_turn(app: &mut App, prompt: Option<&str>, upto: Option<usize>) {
    let req = app.session.request(prompt.map(String::from)).unwrap();
    let mut events = Vec::new();
    let result = ScriptedAnalyzer::new()
        .analyze(&req, &mut |e| {
            events.push(e);
            true
        })
        .unwrap();
    let user = prompt.unwrap_or("(default analysis)");
    app.begin_answer(user);
    let n = upto.unwrap_or(events.len());
    for ev in &events[..n] {
        app.on_event(ev);
    }
    if upto.is_none() {
        app.on_finished(user, Ok(result));
    }
}

fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    t
}

/// The cells of the first occurrence of `text` in the buffer (searching row by row).
fn find(buf: &Buffer, text: &str) -> Option<(u16, u16)> {
    let area = buf.area;
    for y in 0..area.height {
        let row: Vec<String> = (0..area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        let line: String = row.concat();
        if let Some(byte) = line.find(text) {
            // Convert the byte offset into a column (symbols may be multi-byte).
            let mut col = 0usize;
            let mut acc = 0usize;
            for s in &row {
                if acc >= byte {
                    break;
                }
                acc += s.len();
                col += 1;
            }
            return Some((col as u16, y));
        }
    }
    None
}

fn fg_at(buf: &Buffer, text: &str) -> Color {
    let (x, y) = find(buf, text).unwrap_or_else(|| panic!("\"{text}\" not on screen"));
    buf[(x, y)].fg
}

fn rgb(c: [u8; 3]) -> Color {
    Color::Rgb(c[0], c[1], c[2])
}

#[test]
fn transcript_with_coloured_phrases_80x24() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_image(dir.path(), 200);
    feed_turn(&mut app, Some("is this face edited?"), None);
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("transcript_80x24", t.backend());
    let buf = t.backend().buffer();
    // Each grounded phrase and its number carry its mask's colour.
    assert_eq!(fg_at(buf, "left eye [1]"), rgb(PALETTE[0]));
    assert_eq!(fg_at(buf, "[1]"), rgb(PALETTE[0]));
    assert_eq!(fg_at(buf, "mouth [2]"), rgb(PALETTE[1]));
    // Plain words are not coloured.
    assert_eq!(fg_at(buf, "skin"), Color::Reset);
    // The legend swatches use the same colours.
    assert_eq!(fg_at(buf, "■ [1]"), rgb(PALETTE[0]));
    assert_eq!(fg_at(buf, "■ [2]"), rgb(PALETTE[1]));
    // The verdict line is red for fake.
    assert_eq!(fg_at(buf, "verdict: "), Color::Reset);
    let (x, y) = find(buf, "verdict: face 1: FAKE").unwrap();
    assert_eq!(y, 21, "verdict line sits above the status and input lines");
    assert_eq!(buf[(x + 9, y)].fg, Color::LightRed);
}

#[test]
fn layout_at_120x40_with_real_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_image(dir.path(), 20);
    feed_turn(&mut app, None, None);
    let t = render(&mut app, 120, 40);
    insta::assert_snapshot!("real_120x40", t.backend());
    let buf = t.backend().buffer();
    let (x, y) = find(buf, "face 1: REAL").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::LightGreen);
    assert!(find(buf, "no masks").is_some());
}

#[test]
fn streaming_answer_shows_partial_text_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_image(dir.path(), 200);
    // FaceStart, Verdict, 5 words, PhraseOpen, phrase text: the phrase is still open.
    feed_turn(&mut app, Some("explain"), Some(9));
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("streaming_80x24", t.backend());
    let buf = t.backend().buffer();
    assert!(find(buf, "▍").is_some());
    assert_eq!(fg_at(buf, "left eye"), rgb(PALETTE[0]));
    assert!(
        find(buf, "[1]").is_none(),
        "no number before the phrase closes"
    );
}

#[test]
fn masks_toggle_in_legend_and_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_image(dir.path(), 200);
    feed_turn(&mut app, None, None);
    let before = render(&mut app, 80, 24).backend().buffer().clone();
    app.submit_line("/masks 1");
    let t = render(&mut app, 80, 24);
    let buf = t.backend().buffer();
    insta::assert_snapshot!("mask_hidden_80x24", t.backend());
    assert!(find(buf, "□ [1]").is_some());
    assert!(find(buf, "(hidden)").is_some());
    assert_eq!(fg_at(buf, "■ [2]"), rgb(PALETTE[1]));
    // The image pane changed (mask 1's tint is gone), nothing else in the image moved.
    let img_cells = |b: &Buffer| -> Vec<(Color, Color)> {
        (1..15)
            .flat_map(|y| (1..31).map(move |x| (x, y)))
            .map(|(x, y)| (b[(x, y)].fg, b[(x, y)].bg))
            .collect()
    };
    assert_ne!(img_cells(&before), img_cells(buf));
    let tint = rgb(PALETTE[0]);
    let has_tint = |b: &Buffer| {
        img_cells(b)
            .iter()
            .any(|(fg, bg)| *fg == tint || *bg == tint)
    };
    assert!(has_tint(&before), "mask 1's outline is drawn in its colour");
    assert!(!has_tint(buf));
}

#[test]
fn help_screen_80x24() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_image(dir.path(), 200);
    app.submit_line("/help");
    assert!(app.show_help);
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("help_80x24", t.backend());
    let buf = t.backend().buffer();
    for cmd in [
        "/image PATH",
        "/region",
        "/masks on|off|N",
        "/export json",
        "/quit",
    ] {
        assert!(find(buf, cmd).is_some(), "{cmd} missing from help");
    }
}

#[test]
fn error_line_80x24() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_image(dir.path(), 200);
    app.submit_line("/imag other.png");
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!("error_80x24", t.backend());
    let buf = t.backend().buffer();
    let (x, y) = find(buf, "error: unknown command /imag").unwrap();
    assert_eq!(y, 22);
    assert_eq!(buf[(x, y)].fg, Color::Red);
    // A missing image is one line too, and the app keeps running.
    app.submit_line("/image /nonexistent/face.png");
    let t = render(&mut app, 80, 24);
    let buf = t.backend().buffer();
    assert!(find(buf, "error: cannot open image /nonexistent/face.png").is_some());
    assert!(!app.quit);
}

#[test]
fn empty_app_and_tiny_terminal_do_not_panic() {
    let mut app = App::new(
        Session::default(),
        None,
        ImagePane::new(Picker::halfblocks()),
    );
    let t = render(&mut app, 80, 24);
    assert!(find(t.backend().buffer(), "no image").is_some());
    for (w, h) in [(20, 6), (1, 1), (200, 60)] {
        render(&mut app, w, h);
    }
}

/// A whole turn through the real worker thread: keys in, events over the channel, Esc stops.
#[test]
fn worker_turn_streams_and_esc_stops_it() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let dir = tempfile::tempdir().unwrap();
    let analyzer: Arc<dyn Analyzer> = Arc::new(ScriptedAnalyzer::new());
    let loader = Arc::new(
        |_: Option<&str>, _: Option<&str>| -> anyhow::Result<Box<dyn Analyzer>> {
            Ok(Box::new(ScriptedAnalyzer::new()))
        },
    );
    let mut app = app_with_image(dir.path(), 200);
    app.engine = Some(Engine::ready(analyzer, loader.clone()));
    for c in "what about the eyes?".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(app.busy());
    wait_idle(&mut app);
    assert_eq!(app.session.history.len(), 1);
    assert_eq!(app.session.history[0].user, "what about the eyes?");
    assert!(app.session.history[0]
        .assistant
        .contains("<p> the left eye </p> [SEG]"));
    let answer = app.current_answer().unwrap();
    assert_eq!(answer.segments().count(), 2);
    assert_eq!(answer.done, Some(false));

    // A slow engine, stopped with Esc after its first word: the partial answer is kept.
    let slow: Arc<dyn Analyzer> = Arc::new(ScriptedAnalyzer::slow(Duration::from_millis(20)));
    app.engine = Some(Engine::ready(slow, loader));
    app.submit_line("/ask again");
    let start = Instant::now();
    let has_text = |app: &App| {
        app.current_answer()
            .and_then(|a| a.faces.first())
            .is_some_and(|f| !f.pieces.is_empty())
    };
    while !has_text(&app) {
        app.pump();
        assert!(start.elapsed() < Duration::from_secs(30), "no text arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    wait_idle(&mut app);
    let answer = app.current_answer().unwrap();
    assert_eq!(answer.done, Some(true), "the turn reports it was stopped");
    assert!(answer.segments().count() < 2);
    assert_eq!(app.session.history.len(), 2);
    let t = render(&mut app, 80, 24);
    assert!(find(t.backend().buffer(), "(stopped)").is_some());
}

fn wait_idle(app: &mut App) {
    let start = Instant::now();
    while app.busy() {
        app.pump();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "turn never ended"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn mouse_click_and_drag_on_the_image_set_the_region() {
    use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    use dfa::analysis::RegionQuery;
    let mouse = |kind, column, row| MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_image(dir.path(), 200);
    render(&mut app, 80, 24);
    let p = app.image_pane.placement.expect("the image was drawn");
    let (x0, y0) = (p.cells.x, p.cells.y);
    let (x1, y1) = (x0 + p.cells.width - 1, y0 + p.cells.height - 1);

    app.on_mouse(mouse(
        MouseEventKind::Down(MouseButton::Left),
        x0 + 1,
        y0 + 1,
    ));
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), x0 + 1, y0 + 1));
    let Some(RegionQuery::Point([x, y])) = app.session.region.as_ref().map(|r| r.query.clone())
    else {
        panic!("a click sets a point")
    };
    assert!(x > 0.0 && x < 10.0 && y > 0.0 && y < 10.0, "{x},{y}");

    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), x0, y0));
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), x1, y1));
    let Some(RegionQuery::Box(b)) = app.session.region.as_ref().map(|r| r.query.clone()) else {
        panic!("a drag sets a box")
    };
    assert!(b[0] < 3.0 && b[1] < 3.0, "{b:?}");
    assert!(
        b[2] > 58.0 && b[2] <= 65.0 && b[3] > 74.0 && b[3] <= 81.0,
        "{b:?}"
    );

    // A click outside the image changes nothing.
    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), 70, 10));
    app.on_mouse(mouse(MouseEventKind::Up(MouseButton::Left), 70, 10));
    assert!(matches!(
        app.session.region.as_ref().map(|r| &r.query),
        Some(RegionQuery::Box(_))
    ));
}

#[test]
fn a_new_image_drops_the_old_masks_and_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_with_image(dir.path(), 200);
    feed_turn(&mut app, None, None);
    assert_eq!(app.visible_segments().len(), 2);
    let other = dir.path().join("other.png");
    face_image(30, 30, 10).save(&other).unwrap();
    app.submit_line(&format!("/image {}", other.display()));
    assert!(app.visible_segments().is_empty());
    let t = render(&mut app, 80, 24);
    let buf = t.backend().buffer();
    assert!(find(buf, "verdict: — (no analysis yet)").is_some());
    assert!(find(buf, "no masks").is_some());
    // The old conversation stays readable above the new image's line.
    assert!(find(buf, "the left eye [1]").is_some());
    assert!(find(buf, "── loaded").is_some());
}
