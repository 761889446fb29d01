//! Drawing the app: title bar, image pane with mask legend, transcript with coloured grounded
//! phrases, verdict line, status line, input line, and the help screen on top.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

use crate::analysis::Verdict;
use crate::chat::command::COMMANDS;
use crate::chat::palette::seg_colour;
use crate::chat::transcript::{verdict_line, Answer, Piece};
use crate::tui::app::{App, Entry, Status};
use crate::tui::wrap::wrap;

/// The colour of mask `seg_id` as a terminal colour.
pub fn mask_colour(seg_id: usize) -> Color {
    let [r, g, b] = seg_colour(seg_id);
    Color::Rgb(r, g, b)
}

fn verdict_colour(v: Verdict) -> Color {
    match v {
        Verdict::Fake => Color::LightRed,
        Verdict::Real => Color::LightGreen,
        Verdict::Uncertain => Color::Yellow,
    }
}

const DIM: Style = Style::new().fg(Color::DarkGray);

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let [title, main, verdict, status, input] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    draw_title(frame, title, app);
    let left_w = (main.width * 2 / 5).clamp(20.min(main.width), 64);
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_w), Constraint::Min(10)]).areas(main);
    draw_left(frame, left, app);
    draw_transcript(frame, right, app);
    draw_verdict(frame, verdict, app);
    draw_status(frame, status, app);
    draw_input(frame, input, app);
    if app.show_help {
        draw_help(frame, main);
    }
}

fn draw_title(frame: &mut Frame, area: Rect, app: &App) {
    let s = &app.session;
    let image = match &s.image {
        Some(i) => {
            let name = i
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{name} {}x{}", i.rgb.width(), i.rgb.height())
        }
        None => "no image".into(),
    };
    let region = s.region.as_ref().map_or("face", |r| r.label.as_str());
    let face = s.face.map_or("all".to_string(), |f| (f + 1).to_string());
    let mut text = format!(" dfa chat │ {image} │ region: {region} │ face: {face}");
    if let Some(e) = &app.engine {
        text.push_str(&format!(" │ {}", e.short()));
    }
    let style = Style::default().fg(Color::Black).bg(Color::Cyan);
    frame.render_widget(Paragraph::new(text).style(style), area);
}

fn draw_left(frame: &mut Frame, area: Rect, app: &mut App) {
    let segments: Vec<(usize, usize, String, bool, Option<bool>)> = app
        .current_answer()
        .map(|a| {
            a.segments()
                .map(|(f, s)| {
                    (
                        f,
                        s.id,
                        s.phrase.clone(),
                        app.session.masks.visible(s.id),
                        s.consistent,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let legend_h = (segments.len().max(1) as u16 + 2)
        .min(area.height / 2)
        .max(3);
    let [img_area, legend_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(legend_h)]).areas(area);

    let block = Block::bordered().title(" image ");
    let inner = block.inner(img_area);
    frame.render_widget(block, img_area);
    let generation = app.session.image_generation;
    let image = app.session.image.as_ref().map(|i| i.rgb.clone());
    let layers: Vec<_> = app.visible_segments().into_iter().cloned().collect();
    let layer_refs: Vec<_> = layers.iter().collect();
    app.image_pane.render(
        frame,
        inner,
        image.as_deref().map(|i| (i, generation)),
        &layer_refs,
    );

    let title = if app.session.masks.on {
        " masks (on) "
    } else {
        " masks (off) "
    };
    let multi_face = segments.iter().any(|s| s.0 > 0);
    let lines: Vec<Line> = if segments.is_empty() {
        vec![Line::styled("no masks", DIM)]
    } else {
        segments
            .iter()
            .map(|(face, id, phrase, visible, consistent)| {
                let colour = mask_colour(*id);
                let (swatch, style) = if *visible {
                    ("■ ", Style::default().fg(colour))
                } else {
                    ("□ ", DIM)
                };
                let mut spans = vec![
                    Span::styled(swatch, Style::default().fg(colour)),
                    Span::styled(format!("[{id}] "), style.add_modifier(Modifier::BOLD)),
                ];
                if multi_face {
                    spans.push(Span::styled(format!("f{} ", face + 1), style));
                }
                spans.push(Span::styled(phrase.clone(), style));
                if *consistent == Some(false) {
                    spans.push(Span::styled(
                        " ⚠ off-region",
                        Style::default().fg(Color::Yellow),
                    ));
                }
                if !*visible {
                    spans.push(Span::styled(" (hidden)", DIM));
                }
                Line::from(spans)
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        legend_area,
    );
}

/// The transcript as styled spans, before wrapping.
fn entry_spans(entry: &Entry) -> Vec<Span<'static>> {
    match entry {
        Entry::User(text) => vec![
            Span::styled(
                "you › ",
                Style::default()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(text.clone()),
        ],
        Entry::Info(text) => vec![Span::styled(text.clone(), DIM)],
        Entry::Image(text) => vec![Span::styled(
            format!("── {text}"),
            Style::default().fg(Color::Cyan),
        )],
        Entry::Answer(a) => answer_spans(a),
    }
}

fn answer_spans(a: &Answer) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(
        "dfa › ",
        Style::default()
            .fg(Color::Magenta)
            .add_modifier(Modifier::BOLD),
    )];
    if a.faces.is_empty() && a.in_progress() {
        spans.push(Span::styled("thinking…", DIM));
    }
    for (i, face) in a.faces.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("\n"));
        }
        if let Some(v) = &face.verdict {
            spans.push(Span::styled(
                verdict_line(face.face_id, v),
                Style::default()
                    .fg(verdict_colour(v.verdict))
                    .add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw("\n"));
        }
        for piece in &face.pieces {
            match piece {
                Piece::Text(t) => spans.push(Span::raw(t.clone())),
                Piece::Phrase {
                    seg_id,
                    text,
                    closed,
                } => {
                    let style = Style::default()
                        .fg(mask_colour(*seg_id))
                        .add_modifier(Modifier::BOLD);
                    spans.push(Span::styled(text.clone(), style));
                    if *closed {
                        spans.push(Span::styled(format!(" [{seg_id}]"), style));
                    }
                }
            }
        }
    }
    if a.in_progress() && !a.faces.is_empty() {
        spans.push(Span::styled("▍", DIM));
    }
    for w in &a.warnings {
        spans.push(Span::raw("\n"));
        spans.push(Span::styled(
            format!("warning: {w}"),
            Style::default().fg(Color::Yellow),
        ));
    }
    if a.done == Some(true) {
        spans.push(Span::styled(" (stopped)", DIM));
    }
    if let Some(e) = &a.error {
        spans.push(Span::raw("\n"));
        spans.push(Span::styled(
            format!("error: {e}"),
            Style::default().fg(Color::Red),
        ));
    }
    spans
}

fn draw_transcript(frame: &mut Frame, area: Rect, app: &mut App) {
    let block = Block::bordered().title(" conversation ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    for (i, entry) in app.entries.iter().enumerate() {
        if i > 0 {
            lines.push(Line::default());
        }
        lines.extend(wrap(&entry_spans(entry), inner.width as usize));
    }
    if app.entries.is_empty() {
        let hint = if app.session.image.is_none() {
            "Load a face photo with /image PATH (Tab completes), then ask about it. F1: help."
        } else {
            "Press Enter for the default analysis, or type a question. F1: help."
        };
        lines = wrap(&[Span::styled(hint, DIM)], inner.width as usize);
    }
    let height = inner.height as usize;
    let max_scroll = lines.len().saturating_sub(height);
    app.scroll = app.scroll.min(max_scroll);
    let start = max_scroll - app.scroll;
    let visible: Vec<Line> = lines.into_iter().skip(start).take(height).collect();
    frame.render_widget(Paragraph::new(visible), inner);
}

fn draw_verdict(frame: &mut Frame, area: Rect, app: &App) {
    let answer = app
        .answers_about_this_image()
        .find(|a| a.faces.iter().any(|f| f.verdict.is_some()));
    let mut spans = vec![Span::styled(
        "verdict: ",
        Style::default().add_modifier(Modifier::BOLD),
    )];
    match answer {
        None => spans.push(Span::styled("— (no analysis yet)", DIM)),
        Some(a) => {
            for (i, f) in a.faces.iter().filter(|f| f.verdict.is_some()).enumerate() {
                if i > 0 {
                    spans.push(Span::raw(" │ "));
                }
                if let Some(v) = &f.verdict {
                    spans.push(Span::styled(
                        verdict_line(f.face_id, v),
                        Style::default()
                            .fg(verdict_colour(v.verdict))
                            .add_modifier(Modifier::BOLD),
                    ));
                }
            }
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let line = match &app.status {
        Some(Status::Error(e)) => Line::styled(
            format!("error: {e}"),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Some(Status::Info(s)) => Line::styled(s.clone(), DIM),
        None if app.busy() => Line::styled("answering… Esc stops", DIM),
        None => Line::styled(
            "F1 help · Enter send · ↑↓ history · Tab path · PgUp/PgDn scroll · Ctrl+C quit",
            DIM,
        ),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_input(frame: &mut Frame, area: Rect, app: &App) {
    let prompt = "› ";
    let text: String = app.input.text.clone();
    let before: String = text.chars().take(app.input.cursor).collect();
    let prompt_w = Span::raw(prompt).width() as u16;
    let cursor_x = prompt_w + Span::raw(before).width() as u16;
    // Scroll the line horizontally so the cursor stays visible.
    let skip = cursor_x.saturating_sub(area.width.saturating_sub(1));
    let line = Line::from(vec![
        Span::styled(
            prompt,
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(text),
    ]);
    frame.render_widget(Paragraph::new(line).scroll((0, skip)), area);
    if !app.show_help {
        frame.set_cursor_position(Position::new(area.x + cursor_x - skip, area.y));
    }
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = COMMANDS
        .iter()
        .map(|(usage, what)| {
            Line::from(vec![
                Span::styled(format!("{usage:<33}"), Style::default().fg(Color::Cyan)),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::default());
    for keys in [
        "Enter send (empty: default analysis)   Esc stop answer / close",
        "Ctrl+C stop answer, then quit   ↑↓ input history   Tab complete path",
        "PgUp/PgDn scroll   mouse on image: click = point, drag = box",
    ] {
        lines.push(Line::styled(keys, DIM));
    }
    let w = area.width.min(96);
    let h = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" help — Esc closes ")),
        popup,
    );
}
