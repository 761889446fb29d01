//! The `dfa.report/1` JSON every front end writes (schema in docs/report-format.md).

use serde_json::{json, Value};

use crate::analysis::{AnalysisResult, FaceResult, SegmentResult};

use super::rle;

pub const SCHEMA: &str = "dfa.report/1";

fn segment_json(s: &SegmentResult) -> Value {
    json!({
        "id": s.id,
        "phrase": s.phrase,
        "region": s.region,
        "bbox": s.bbox,
        "area_px": s.area_px,
        "consistent": s.consistent,
        "mask": rle::encode(&s.mask),
    })
}

fn face_json(f: &FaceResult) -> Value {
    json!({
        "face_id": f.face_id,
        "bbox": f.bbox,
        "verdict": f.verdict.as_str(),
        "p_fake": f.p_fake,
        "forgery_type": f.forgery_type,
        "type_probs": f.type_probs.iter().map(|(n, p)| json!({"type": n, "p": p})).collect::<Vec<_>>(),
        "explanation": f.explanation,
        "explanation_raw": f.explanation_raw,
        "segments": f.segments.iter().map(segment_json).collect::<Vec<_>>(),
    })
}

/// The whole report as JSON.
pub fn report_json(r: &AnalysisResult) -> Value {
    json!({
        "schema": SCHEMA,
        "image": {"path": r.image_path, "width": r.width, "height": r.height},
        "faces": r.faces.iter().map(face_json).collect::<Vec<_>>(),
        "warnings": r.warnings,
        "provenance": r.provenance,
    })
}
