//! Word wrapping of styled text into lines of a given width (so the transcript knows its own
//! height and can scroll from the bottom).

use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// Wrap styled spans into lines at most `width` cells wide. `\n` breaks a line; words longer
/// than a line are split.
pub fn wrap(spans: &[Span<'_>], width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut cur_w = 0usize;
    let flush =
        |lines: &mut Vec<Line<'static>>, cur: &mut Vec<Span<'static>>, cur_w: &mut usize| {
            while let Some(last) = cur.last_mut() {
                let trimmed = last.content.trim_end().len();
                if trimmed > 0 {
                    last.content.to_mut().truncate(trimmed);
                    break;
                }
                cur.pop();
            }
            lines.push(Line::from(std::mem::take(cur)));
            *cur_w = 0;
        };
    for span in spans {
        for token in tokens(&span.content) {
            if token == "\n" {
                flush(&mut lines, &mut cur, &mut cur_w);
                continue;
            }
            let is_space = token.chars().all(char::is_whitespace);
            if is_space && cur_w == 0 {
                continue;
            }
            let tw = cell_width(token);
            if cur_w + tw > width && cur_w > 0 {
                flush(&mut lines, &mut cur, &mut cur_w);
                if is_space {
                    continue;
                }
            }
            if tw <= width {
                push(&mut cur, token, span.style);
                cur_w += tw;
                continue;
            }
            // A word longer than the line: split it.
            let mut piece = String::new();
            for c in token.chars() {
                let cw = cell_width(c.encode_utf8(&mut [0; 4]));
                if cur_w + cell_width(&piece) + cw > width {
                    push(&mut cur, &piece, span.style);
                    piece.clear();
                    flush(&mut lines, &mut cur, &mut cur_w);
                }
                piece.push(c);
            }
            cur_w += cell_width(&piece);
            push(&mut cur, &piece, span.style);
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        flush(&mut lines, &mut cur, &mut cur_w);
    }
    lines
}

fn push(cur: &mut Vec<Span<'static>>, text: &str, style: Style) {
    if text.is_empty() {
        return;
    }
    match cur.last_mut() {
        Some(last) if last.style == style => last.content.to_mut().push_str(text),
        _ => cur.push(Span::styled(text.to_string(), style)),
    }
}

fn cell_width(s: &str) -> usize {
    Span::raw(s).width()
}

/// Split text into words, runs of spaces, and single newlines.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut kind: Option<bool> = None; // Some(true) = whitespace run
    for (i, c) in text.char_indices() {
        if c == '\n' {
            if start < i {
                out.push(&text[start..i]);
            }
            out.push("\n");
            start = i + 1;
            kind = None;
            continue;
        }
        let ws = c.is_whitespace();
        if kind.is_some_and(|k| k != ws) {
            out.push(&text[start..i]);
            start = i;
        }
        kind = Some(ws);
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Color;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn wraps_words_and_keeps_styles() {
        let red = Style::default().fg(Color::Red);
        let spans = [
            Span::raw("the "),
            Span::styled("left eye", red),
            Span::raw(" [1] is blurred\nnext"),
        ];
        let lines = wrap(&spans, 10);
        assert_eq!(
            text(&lines),
            vec!["the left", "eye [1] is", "blurred", "next"]
        );
        assert_eq!(lines[0].spans[1].style, red);
        assert_eq!(lines[0].spans[1].content, "left");
        assert_eq!(lines[1].spans[0].content, "eye");
    }

    #[test]
    fn splits_long_words() {
        let lines = wrap(&[Span::raw("abcdefghij klm")], 4);
        assert_eq!(text(&lines), vec!["abcd", "efgh", "ij", "klm"]);
    }
}
