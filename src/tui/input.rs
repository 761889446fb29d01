//! The input line: editing, history (Up/Down) and Tab completion of paths after `/image`.

use std::path::{Path, PathBuf};

/// One editable line with a history of submitted lines.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub text: String,
    /// Cursor position in characters.
    pub cursor: usize,
    history: Vec<String>,
    /// Position while browsing the history; `None` = editing the draft.
    browsing: Option<usize>,
    draft: String,
}

impl Input {
    fn byte_at(&self, char_pos: usize) -> usize {
        self.text
            .char_indices()
            .nth(char_pos)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    pub fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.len() {
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.len();
    }

    /// Replace the whole text, cursor at the end.
    pub fn set(&mut self, text: impl Into<String>) {
        self.text = text.into();
        self.cursor = self.len();
    }

    pub fn clear(&mut self) {
        self.set("");
        self.browsing = None;
    }

    /// Take the line for submission and remember it in the history.
    pub fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        if !line.trim().is_empty() && self.history.last() != Some(&line) {
            self.history.push(line.clone());
        }
        line
    }

    /// Up: the previous history line.
    pub fn older(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let pos = match self.browsing {
            None => {
                self.draft = self.text.clone();
                self.history.len() - 1
            }
            Some(p) => p.saturating_sub(1),
        };
        self.browsing = Some(pos);
        let line = self.history[pos].clone();
        self.set(line);
    }

    /// Down: the next history line, then back to the draft.
    pub fn newer(&mut self) {
        let Some(p) = self.browsing else { return };
        if p + 1 < self.history.len() {
            self.browsing = Some(p + 1);
            let line = self.history[p + 1].clone();
            self.set(line);
        } else {
            self.browsing = None;
            let draft = std::mem::take(&mut self.draft);
            self.set(draft);
        }
    }
}

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp", "ppm"];

/// Complete the path after `/image ` in `line`: the new line and, when several names fit, the
/// candidates. `None` when the line is not an `/image` command or nothing fits.
pub fn complete_image_path(line: &str, cwd: &Path) -> Option<(String, Vec<String>)> {
    let (cmd, partial) = ["/image ", "/img ", "/open "]
        .iter()
        .find_map(|c| line.strip_prefix(c).map(|rest| (*c, rest.trim_start())))?;
    let (dir_part, prefix) = match partial.rfind('/') {
        Some(i) => (&partial[..=i], &partial[i + 1..]),
        None => ("", partial),
    };
    let dir: PathBuf = if let Some(rest) = dir_part.strip_prefix("~/") {
        PathBuf::from(std::env::var_os("HOME")?).join(rest)
    } else if Path::new(dir_part).is_absolute() {
        PathBuf::from(dir_part)
    } else {
        cwd.join(dir_part)
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let is_dir = e.path().is_dir();
            let is_image = Path::new(&name).extension().is_some_and(|x| {
                IMAGE_EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str())
            });
            match (is_dir, is_image) {
                (true, _) => Some(format!("{name}/")),
                (false, true) => Some(name),
                _ => None,
            }
        })
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort();
    let common = names.iter().skip(1).fold(names[0].clone(), |acc, n| {
        acc.chars()
            .zip(n.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect()
    });
    let line = format!("{cmd}{dir_part}{common}");
    let candidates = if names.len() > 1 { names } else { Vec::new() };
    Some((line, candidates))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_browses_and_returns_to_draft() {
        let mut i = Input::default();
        for line in ["one", "two"] {
            i.set(line);
            i.take();
        }
        i.set("dra");
        i.older();
        assert_eq!(i.text, "two");
        i.older();
        assert_eq!(i.text, "one");
        i.older();
        assert_eq!(i.text, "one");
        i.newer();
        assert_eq!(i.text, "two");
        i.newer();
        assert_eq!(i.text, "dra");
    }

    #[test]
    fn edits_in_the_middle_of_multibyte_text() {
        let mut i = Input::default();
        i.set("façe");
        i.left();
        i.backspace();
        i.insert('x');
        assert_eq!(i.text, "faxe");
    }

    #[test]
    fn completes_image_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("faces")).unwrap();
        for f in [
            "faces/alpha.png",
            "faces/alps.jpg",
            "faces/notes.txt",
            "b.png",
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let (line, c) = complete_image_path("/image fa", dir.path()).unwrap();
        assert_eq!(line, "/image faces/");
        assert!(c.is_empty());
        let (line, c) = complete_image_path("/image faces/al", dir.path()).unwrap();
        assert_eq!(line, "/image faces/alp");
        assert_eq!(c, vec!["alpha.png", "alps.jpg"]);
        assert!(complete_image_path("/image faces/no", dir.path()).is_none());
        assert!(complete_image_path("/ask fa", dir.path()).is_none());
    }
}
