//! One assistant answer as it streams in: the [`Event`]s of a turn folded into verdicts, text
//! pieces (plain or grounded phrases) and masks. Both front ends render from this.

use crate::analysis::{Event, SegmentResult, Verdict};

/// A run of answer text.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    /// A grounded phrase: its text and the number of its mask.
    Phrase {
        seg_id: usize,
        text: String,
        closed: bool,
    },
}

/// The verdict of one face.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceVerdict {
    pub verdict: Verdict,
    pub p_fake: f32,
    pub forgery_type: Option<String>,
}

/// What was said about one face.
#[derive(Debug, Clone, Default)]
pub struct FaceAnswer {
    pub face_id: usize,
    pub bbox: Option<[f32; 4]>,
    pub verdict: Option<FaceVerdict>,
    pub pieces: Vec<Piece>,
    pub segments: Vec<SegmentResult>,
}

/// One answer, built from events.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub faces: Vec<FaceAnswer>,
    pub warnings: Vec<String>,
    /// `Some(stopped)` once `Done` arrived.
    pub done: Option<bool>,
    /// The turn failed with this one-line message.
    pub error: Option<String>,
}

impl Answer {
    /// Fold one event in.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::FaceStart { face_id, bbox } => self.face(*face_id).bbox = Some(*bbox),
            Event::Verdict {
                face_id,
                verdict,
                p_fake,
                forgery_type,
            } => {
                self.face(*face_id).verdict = Some(FaceVerdict {
                    verdict: *verdict,
                    p_fake: *p_fake,
                    forgery_type: forgery_type.clone(),
                })
            }
            Event::TextDelta { face_id, text } => {
                let face = self.face(*face_id);
                match face.pieces.last_mut() {
                    Some(Piece::Phrase {
                        text: t,
                        closed: false,
                        ..
                    })
                    | Some(Piece::Text(t)) => t.push_str(text),
                    _ => face.pieces.push(Piece::Text(text.clone())),
                }
            }
            Event::PhraseOpen { face_id, seg_id } => {
                self.face(*face_id).pieces.push(Piece::Phrase {
                    seg_id: *seg_id,
                    text: String::new(),
                    closed: false,
                })
            }
            Event::PhraseClose {
                face_id,
                seg_id,
                phrase,
            } => {
                let face = self.face(*face_id);
                let open = face.pieces.iter_mut().rev().find_map(|p| match p {
                    Piece::Phrase {
                        seg_id: s,
                        text,
                        closed,
                    } if *s == *seg_id && !*closed => Some((text, closed)),
                    _ => None,
                });
                match open {
                    Some((text, closed)) => {
                        if text.trim().is_empty() {
                            *text = phrase.clone();
                        }
                        *closed = true;
                    }
                    // A close without an open: show the phrase as grounded anyway.
                    None => face.pieces.push(Piece::Phrase {
                        seg_id: *seg_id,
                        text: phrase.clone(),
                        closed: true,
                    }),
                }
            }
            Event::MaskReady { face_id, segment } => {
                let face = self.face(*face_id);
                face.segments.retain(|s| s.id != segment.id);
                face.segments.push(segment.clone());
            }
            Event::Warning(w) => self.warnings.push(w.clone()),
            Event::Done { stopped } => {
                self.done = Some(*stopped);
                for face in &mut self.faces {
                    for piece in &mut face.pieces {
                        if let Piece::Phrase { closed, .. } = piece {
                            *closed = true;
                        }
                    }
                }
            }
        }
    }

    /// The face with this id, created on first use (faces stay in id order).
    fn face(&mut self, face_id: usize) -> &mut FaceAnswer {
        let pos = match self.faces.iter().position(|f| f.face_id == face_id) {
            Some(p) => p,
            None => {
                let at = self.faces.partition_point(|f| f.face_id < face_id);
                self.faces.insert(
                    at,
                    FaceAnswer {
                        face_id,
                        ..Default::default()
                    },
                );
                at
            }
        };
        &mut self.faces[pos]
    }

    /// Every mask of the answer with its face id, in face then number order.
    pub fn segments(&self) -> impl Iterator<Item = (usize, &SegmentResult)> {
        self.faces
            .iter()
            .flat_map(|f| f.segments.iter().map(move |s| (f.face_id, s)))
    }

    /// True while events may still come.
    pub fn in_progress(&self) -> bool {
        self.done.is_none() && self.error.is_none()
    }
}

/// The one-line verdict of a face: `face 1: FAKE  p(fake)=0.87  type: warp`.
pub fn verdict_line(face_id: usize, v: &FaceVerdict) -> String {
    let mut s = format!(
        "face {}: {}  p(fake)={:.2}",
        face_id + 1,
        v.verdict.as_str().to_uppercase(),
        v.p_fake
    );
    if let Some(t) = &v.forgery_type {
        s.push_str(&format!("  type: {t}"));
    }
    s
}

/// The explanation of a face as plain text with `[n]` after each grounded phrase.
pub fn marked_text(face: &FaceAnswer) -> String {
    let mut s = String::new();
    for piece in &face.pieces {
        match piece {
            Piece::Text(t) => s.push_str(t),
            Piece::Phrase { seg_id, text, .. } => {
                s.push_str(text);
                s.push_str(&format!(" [{seg_id}]"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_a_streamed_answer() {
        let mut a = Answer::default();
        for ev in [
            Event::FaceStart {
                face_id: 0,
                bbox: [0.0, 0.0, 10.0, 10.0],
            },
            Event::Verdict {
                face_id: 0,
                verdict: Verdict::Fake,
                p_fake: 0.9,
                forgery_type: Some("warp".into()),
            },
            Event::TextDelta {
                face_id: 0,
                text: "Edits on ".into(),
            },
            Event::PhraseOpen {
                face_id: 0,
                seg_id: 1,
            },
            Event::TextDelta {
                face_id: 0,
                text: "the left".into(),
            },
            Event::TextDelta {
                face_id: 0,
                text: " eye".into(),
            },
            Event::PhraseClose {
                face_id: 0,
                seg_id: 1,
                phrase: "the left eye".into(),
            },
            Event::TextDelta {
                face_id: 0,
                text: " are visible.".into(),
            },
            Event::Done { stopped: false },
        ] {
            a.apply(&ev);
        }
        assert_eq!(a.faces.len(), 1);
        assert_eq!(
            marked_text(&a.faces[0]),
            "Edits on the left eye [1] are visible."
        );
        assert_eq!(
            verdict_line(0, a.faces[0].verdict.as_ref().unwrap()),
            "face 1: FAKE  p(fake)=0.90  type: warp"
        );
        assert_eq!(a.done, Some(false));
    }
}
