//! The slash commands of `dfa chat`, parsed the same way by the TUI and the plain REPL.
//!
//! A line that does not start with `/` is a question (the same as `/ask TEXT`).

use std::path::PathBuf;

/// What the user wants to ask about, as typed after `/region`.
#[derive(Debug, Clone, PartialEq)]
pub enum RegionArg {
    /// A FICT concept name or synonym ("left eye").
    Concept(String),
    /// `x0,y0,x1,y1` in image pixels.
    Box([f32; 4]),
    /// `x,y` in image pixels.
    Point([f32; 2]),
    /// `/region off`: ask about the whole face again.
    Off,
}

/// How `/masks` changes the mask display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskArg {
    On,
    Off,
    /// Toggle the mask with this 1-based number.
    Toggle(usize),
}

/// One parsed input line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A question; `None` = the default analysis prompt.
    Ask(Option<String>),
    Image(PathBuf),
    Region(RegionArg),
    Masks(MaskArg),
    Faces,
    /// 1-based face number; `None` = every face.
    Face(Option<usize>),
    Save(Option<PathBuf>),
    ExportJson(Option<PathBuf>),
    Clear,
    /// `None` = back to the model without an adapter.
    Adapter(Option<String>),
    Seed(u64),
    Help,
    Quit,
}

/// A line that is not a valid command; the message is one line for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command /{name}{}; /help lists the commands", suggestion.as_ref().map(|s| format!(" (did you mean /{s}?)")).unwrap_or_default())]
    Unknown {
        name: String,
        suggestion: Option<String>,
    },
    #[error("/{command} needs {what}: {usage}")]
    Missing {
        command: &'static str,
        what: &'static str,
        usage: &'static str,
    },
    #[error("/{command}: {message}; usage: {usage}")]
    Invalid {
        command: &'static str,
        message: String,
        usage: &'static str,
    },
}

/// Every command with its usage line, as shown by `/help` (in this order).
pub const COMMANDS: &[(&str, &str)] = &[
    ("/image PATH", "load an image (Tab completes the path)"),
    (
        "/ask [TEXT]",
        "ask a question; without TEXT: the default analysis",
    ),
    (
        "/region NAME|x0,y0,x1,y1|x,y|off",
        "ask about a face region, a box or a point",
    ),
    (
        "/masks on|off|N",
        "show or hide all masks, or toggle mask N",
    ),
    ("/faces", "list the faces found in the image"),
    ("/face N|all", "analyse only face N (or every face)"),
    (
        "/save [DIR]",
        "write a Markdown report with overlay and mask PNGs",
    ),
    ("/export json [PATH]", "write the last result as JSON"),
    ("/clear", "forget the conversation (keeps the image)"),
    ("/adapter NAME|none", "switch the LoRA adapter"),
    ("/seed N", "set the sampling seed"),
    ("/help", "show this help"),
    ("/quit", "leave"),
];

const NAMES: &[&str] = &[
    "image", "ask", "region", "masks", "faces", "face", "save", "export", "clear", "adapter",
    "seed", "help", "quit",
];

/// Parse one input line. Empty lines are `Ask(None)`; the caller decides whether to ignore them.
pub fn parse(line: &str) -> Result<Command, CommandError> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Ask(non_empty(line)));
    };
    let (name, arg) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let name = name.to_lowercase();
    match name.as_str() {
        "ask" => Ok(Command::Ask(non_empty(arg))),
        "image" | "img" | "open" => {
            if arg.is_empty() {
                return Err(missing("image", "a path", "/image PATH"));
            }
            Ok(Command::Image(PathBuf::from(unquote(arg))))
        }
        "region" => parse_region(arg).map(Command::Region),
        "masks" | "mask" => parse_masks(arg).map(Command::Masks),
        "faces" => Ok(Command::Faces),
        "face" => parse_face(arg).map(Command::Face),
        "save" => Ok(Command::Save(
            non_empty(arg).map(|a| PathBuf::from(unquote(&a))),
        )),
        "export" => parse_export(arg),
        "clear" => Ok(Command::Clear),
        "adapter" => {
            if arg.is_empty() {
                return Err(missing("adapter", "a name", "/adapter NAME|none"));
            }
            Ok(Command::Adapter(match arg {
                "none" | "off" => None,
                a => Some(unquote(a)),
            }))
        }
        "seed" => arg
            .parse::<u64>()
            .map(Command::Seed)
            .map_err(|_| CommandError::Invalid {
                command: "seed",
                message: format!("\"{arg}\" is not a whole number"),
                usage: "/seed N",
            }),
        "help" | "h" | "?" => Ok(Command::Help),
        "quit" | "exit" | "q" => Ok(Command::Quit),
        _ => Err(CommandError::Unknown {
            suggestion: closest(&name),
            name,
        }),
    }
}

fn parse_region(arg: &str) -> Result<RegionArg, CommandError> {
    const USAGE: &str = "/region NAME | x0,y0,x1,y1 | x,y | off";
    if arg.is_empty() {
        return Err(missing("region", "a region", USAGE));
    }
    if matches!(arg.to_lowercase().as_str(), "off" | "none" | "clear") {
        return Ok(RegionArg::Off);
    }
    let looks_numeric = arg
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | ' ' | '-' | '+'));
    if !looks_numeric {
        return Ok(RegionArg::Concept(unquote(arg).to_lowercase()));
    }
    let nums: Result<Vec<f32>, _> = arg
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::parse::<f32>)
        .collect();
    let invalid = |message: String| CommandError::Invalid {
        command: "region",
        message,
        usage: USAGE,
    };
    let nums = nums.map_err(|_| invalid(format!("\"{arg}\" is not a list of numbers")))?;
    if nums.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(invalid("coordinates must be non-negative pixels".into()));
    }
    match nums[..] {
        [x, y] => Ok(RegionArg::Point([x, y])),
        [x0, y0, x1, y1] => {
            if x1 <= x0 || y1 <= y0 {
                return Err(invalid(format!(
                    "the box {x0},{y0},{x1},{y1} is empty (need x0 < x1 and y0 < y1)"
                )));
            }
            Ok(RegionArg::Box([x0, y0, x1, y1]))
        }
        _ => Err(invalid(format!(
            "expected 2 (a point) or 4 (a box) numbers, got {}",
            nums.len()
        ))),
    }
}

fn parse_masks(arg: &str) -> Result<MaskArg, CommandError> {
    const USAGE: &str = "/masks on|off|N";
    match arg.to_lowercase().as_str() {
        "" => Err(missing("masks", "on, off or a mask number", USAGE)),
        "on" => Ok(MaskArg::On),
        "off" => Ok(MaskArg::Off),
        n => match n.trim_start_matches('[').trim_end_matches(']').parse() {
            Ok(0) | Err(_) => Err(CommandError::Invalid {
                command: "masks",
                message: format!("\"{arg}\" is not on, off or a mask number (1, 2, ...)"),
                usage: USAGE,
            }),
            Ok(n) => Ok(MaskArg::Toggle(n)),
        },
    }
}

fn parse_face(arg: &str) -> Result<Option<usize>, CommandError> {
    const USAGE: &str = "/face N|all";
    match arg.to_lowercase().as_str() {
        "" => Err(missing("face", "a face number", USAGE)),
        "all" | "*" => Ok(None),
        n => match n.parse::<usize>() {
            Ok(0) | Err(_) => Err(CommandError::Invalid {
                command: "face",
                message: format!("\"{arg}\" is not a face number (1, 2, ...) or all"),
                usage: USAGE,
            }),
            Ok(n) => Ok(Some(n)),
        },
    }
}

fn parse_export(arg: &str) -> Result<Command, CommandError> {
    const USAGE: &str = "/export json [PATH]";
    let (format, path) = match arg.find(char::is_whitespace) {
        Some(i) => (&arg[..i], arg[i..].trim()),
        None => (arg, ""),
    };
    match format.to_lowercase().as_str() {
        "json" => Ok(Command::ExportJson(
            non_empty(path).map(|p| PathBuf::from(unquote(&p))),
        )),
        "" => Err(missing("export", "a format", USAGE)),
        other => Err(CommandError::Invalid {
            command: "export",
            message: format!("unknown format \"{other}\" (only json)"),
            usage: USAGE,
        }),
    }
}

fn missing(command: &'static str, what: &'static str, usage: &'static str) -> CommandError {
    CommandError::Missing {
        command,
        what,
        usage,
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Strip one pair of matching quotes, so that paths with spaces can be typed as "a b.png".
fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// The command name closest to a typo (edit distance at most 2), if any.
fn closest(name: &str) -> Option<String> {
    NAMES
        .iter()
        .map(|n| (edit_distance(name, n), *n))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| n.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(
            parse("what about the nose?"),
            Ok(Command::Ask(Some("what about the nose?".into())))
        );
        assert_eq!(parse("/ask"), Ok(Command::Ask(None)));
        assert_eq!(
            parse("/image \"my face.png\""),
            Ok(Command::Image("my face.png".into()))
        );
        assert_eq!(
            parse("/region Left Eye"),
            Ok(Command::Region(RegionArg::Concept("left eye".into())))
        );
        assert_eq!(
            parse("/region 10,20,30,40"),
            Ok(Command::Region(RegionArg::Box([10.0, 20.0, 30.0, 40.0])))
        );
        assert_eq!(
            parse("/region 5 6"),
            Ok(Command::Region(RegionArg::Point([5.0, 6.0])))
        );
        assert_eq!(parse("/region off"), Ok(Command::Region(RegionArg::Off)));
        assert_eq!(parse("/masks off"), Ok(Command::Masks(MaskArg::Off)));
        assert_eq!(parse("/masks 3"), Ok(Command::Masks(MaskArg::Toggle(3))));
        assert_eq!(parse("/face 2"), Ok(Command::Face(Some(2))));
        assert_eq!(parse("/face all"), Ok(Command::Face(None)));
        assert_eq!(parse("/save"), Ok(Command::Save(None)));
        assert_eq!(
            parse("/export json out.json"),
            Ok(Command::ExportJson(Some("out.json".into())))
        );
        assert_eq!(parse("/adapter none"), Ok(Command::Adapter(None)));
        assert_eq!(parse("/seed 42"), Ok(Command::Seed(42)));
        assert_eq!(parse("/QUIT"), Ok(Command::Quit));
    }

    #[test]
    fn bad_lines_give_one_line_errors() {
        for bad in [
            "/imag x.png",
            "/image",
            "/region 1,2,3",
            "/region 10,10,5,20",
            "/masks maybe",
            "/masks 0",
            "/face zero",
            "/export csv",
            "/seed -1",
            "/frobnicate",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(!err.contains('\n') && !err.is_empty(), "{bad}: {err}");
        }
        assert!(parse("/imag x.png")
            .unwrap_err()
            .to_string()
            .contains("did you mean /image?"));
    }
}
