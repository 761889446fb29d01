//! Per-sample scoring: one system's cached predictions for a sample against its labels, as
//! small items that [`super::summary`] averages and bootstraps.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use image::GrayImage;

use super::cache::{PredSegment, Prediction};
use super::hungarian::max_weight_matching;
use super::metrics::{any_on, union_mask, PixelCounts};
use super::tasks::{Planned, Task};
use super::text;
use crate::analysis::Verdict;
use crate::face::fict::{within, Fict};
use crate::forge::record::Sample;
use crate::report::rle;

/// A detection decision.
#[derive(Debug, Clone)]
pub struct DetItem {
    pub fake: bool,
    pub p_fake: f64,
    pub verdict: Verdict,
    /// The recipe family (forgery type, or "real"), for the per-recipe breakdown.
    pub recipe: String,
}

/// AGE on one fake: the IoU reached by each ground-truth concept (0 when unmatched).
#[derive(Debug, Clone)]
pub struct AgeItem {
    pub per_concept: Vec<(String, f64)>,
    /// IoUs of the matched (IoU > 0) phrase/segment pairs.
    pub matched: Vec<f64>,
    pub phrases: usize,
    pub unmatched_phrases: usize,
    pub missed_concepts: usize,
}

impl AgeItem {
    /// Mean IoU over the ground-truth concepts of this sample.
    pub fn miou(&self) -> f64 {
        if self.per_concept.is_empty() {
            return 0.0;
        }
        self.per_concept.iter().map(|c| c.1).sum::<f64>() / self.per_concept.len() as f64
    }
}

/// Region naming on one answer. A named concept is right when it is one of the sample's
/// concepts or lies inside one (a child: "left upper eyelid" for "left eye"); a sample concept
/// is found when a right name equals it or lies inside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Naming {
    pub named: usize,
    pub named_right: usize,
    pub truth: usize,
    pub truth_found: usize,
}

/// Everything scored for one sample by one system.
#[derive(Debug, Clone, Default)]
pub struct SampleScores {
    /// The recipe family of a fake ("real" for a real), for the per-recipe breakdowns.
    pub family: String,
    /// The photo source of the sample (`Sample::collection`), for the per-source breakdown.
    pub collection: Option<String>,
    pub det: Vec<DetItem>,
    /// (true type, predicted type), fakes only.
    pub cls: Vec<(String, Option<String>)>,
    /// Pixel counts of the union of masks against the artifact mask, fakes only.
    pub loc: Vec<PixelCounts>,
    pub age: Vec<AgeItem>,
    /// Region naming of the concepts the AGE phrases name.
    pub naming: Vec<Naming>,
    /// (segments not flagged inconsistent, segments).
    pub consistency: (usize, usize),
    /// For a real sample: did any answer carry a non-empty mask?
    pub masks_on_real: Option<bool>,
    /// (task, METEOR, ROUGE-L) for every answer that has a reference.
    pub text: Vec<(Task, f64, f64)>,
    /// (truth, predicted) for region and box questions.
    pub region_questions: Vec<(Task, bool, bool)>,
    /// Requests with no prediction (analysis failed).
    pub missing_predictions: usize,
    /// Ground-truth masks that could not be read (line reported once each).
    pub gt_errors: Vec<String>,
}

/// The FICT concept a phrase names: looked up in the tree (with and without a leading article),
/// falling back to the segment's own `region` label.
pub fn concept_of(phrase: &str, region: Option<&str>) -> Option<String> {
    let fict = Fict::builtin();
    let p = phrase.trim().to_lowercase();
    let bare = p
        .strip_prefix("the ")
        .or_else(|| p.strip_prefix("a "))
        .unwrap_or(&p);
    for q in [bare, p.as_str()] {
        if let Ok(c) = fict.lookup(q) {
            return Some(c.name.clone());
        }
    }
    let r = region?.trim().to_lowercase();
    match fict.lookup(&r) {
        Ok(c) => Some(c.name.clone()),
        Err(_) => (!r.is_empty()).then_some(r),
    }
}

fn canonical(name: &str) -> String {
    concept_of(name, Some(name)).unwrap_or_else(|| name.trim().to_lowercase())
}

fn load_mask(root: &Path, rel: &str) -> Result<GrayImage, String> {
    let path = root.join(rel);
    image::open(&path)
        .map(|i| i.to_luma8())
        .map_err(|e| format!("ground-truth mask {}: {e}", path.display()))
}

fn decode_masks(segs: &[PredSegment]) -> Vec<GrayImage> {
    segs.iter()
        .map(|s| {
            rle::decode(&s.rle).unwrap_or_else(|_| GrayImage::new(s.rle.size[1], s.rle.size[0]))
        })
        .collect()
}

/// Score one sample. `preds` maps a planned request key to its prediction.
pub fn score_sample(
    sample: &Sample,
    root: &Path,
    planned: &[Planned],
    preds: &HashMap<String, Prediction>,
) -> SampleScores {
    let fake = sample.label == "fake";
    let mut s = SampleScores {
        family: if fake {
            recipe_family(sample.forgery_type.as_deref(), sample.recipe.as_deref())
        } else {
            "real".into()
        },
        collection: sample.collection.clone(),
        ..Default::default()
    };
    let mut real_has_masks = false;
    let mut artifact: Option<Result<GrayImage, String>> = None;
    for req in planned {
        let Some(pred) = preds.get(&req.key) else {
            s.missing_predictions += 1;
            continue;
        };
        let masks = decode_masks(&pred.segments);
        if !fake
            && matches!(
                req.uses[0].task,
                Task::Det | Task::Cls | Task::Loc | Task::Age
            )
        {
            real_has_masks |= masks.iter().any(any_on);
        }
        for u in &req.uses {
            if let Some(reference) = &u.reference {
                s.text.push((
                    u.task,
                    text::meteor(&pred.explanation_raw, reference),
                    text::rouge_l(&pred.explanation_raw, reference),
                ));
            }
            match u.task {
                Task::Det => s.det.push(DetItem {
                    fake,
                    p_fake: pred.p_fake as f64,
                    verdict: pred.verdict,
                    recipe: s.family.clone(),
                }),
                Task::Cls => {
                    if let (true, Some(t)) = (fake, &sample.forgery_type) {
                        s.cls.push((t.clone(), pred.forgery_type.clone()));
                    }
                }
                Task::Loc => {
                    let Some(rel) = sample.artifact_mask.as_deref().filter(|_| fake) else {
                        continue;
                    };
                    match artifact.get_or_insert_with(|| load_mask(root, rel)) {
                        Ok(gt) => {
                            let u = union_mask(&masks, gt.dimensions());
                            s.loc.push(PixelCounts::of(&u, gt));
                        }
                        Err(e) => s.gt_errors.push(e.clone()),
                    }
                }
                Task::Age => score_age(sample, root, pred, &masks, &mut s),
                Task::Toe => {}
                Task::Region | Task::Box => {
                    let rec = u.record.as_ref();
                    if let Some(truth) = rec.and_then(|r| r.positive) {
                        let predicted = pred.verdict == Verdict::Fake
                            && match (u.task, rec) {
                                (Task::Region, Some(r)) => {
                                    let asked = r.region.as_deref().map(canonical);
                                    pred.segments.iter().any(|g| {
                                        concept_of(&g.phrase, g.region.as_deref()) == asked
                                    })
                                }
                                (_, Some(r)) => r
                                    .bbox
                                    .is_some_and(|b| masks.iter().any(|m| mask_hits_box(m, b))),
                                _ => false,
                            };
                        s.region_questions.push((u.task, truth, predicted));
                    }
                }
            }
        }
    }
    if !fake && s.missing_predictions < planned.len() {
        s.masks_on_real = Some(real_has_masks);
    }
    s
}

fn mask_hits_box(m: &GrayImage, b: [f32; 4]) -> bool {
    let (w, h) = m.dimensions();
    let x0 = b[0].max(0.0) as u32;
    let y0 = b[1].max(0.0) as u32;
    let x1 = (b[2].max(0.0).ceil() as u32).min(w);
    let y1 = (b[3].max(0.0).ceil() as u32).min(h);
    (y0..y1).any(|y| (x0..x1).any(|x| m.get_pixel(x, y).0[0] > 127))
}

fn score_age(
    sample: &Sample,
    root: &Path,
    pred: &Prediction,
    masks: &[GrayImage],
    s: &mut SampleScores,
) {
    // Region naming and consistency are scored on reals too (naming anything there is a FP).
    let named: BTreeSet<String> = pred
        .segments
        .iter()
        .filter_map(|g| concept_of(&g.phrase, g.region.as_deref()))
        .collect();
    let truth: BTreeSet<String> = sample.concepts.iter().map(|c| canonical(c)).collect();
    s.naming.push(Naming {
        named: named.len(),
        named_right: named
            .iter()
            .filter(|n| truth.iter().any(|t| within(n, t)))
            .count(),
        truth: truth.len(),
        truth_found: truth
            .iter()
            .filter(|t| named.iter().any(|n| within(n, t)))
            .count(),
    });
    s.consistency.0 += pred
        .segments
        .iter()
        .filter(|g| g.consistent != Some(false))
        .count();
    s.consistency.1 += pred.segments.len();
    if sample.label != "fake" || sample.segments.is_empty() {
        return;
    }
    let mut gts = Vec::new();
    for g in &sample.segments {
        match load_mask(root, &g.mask) {
            Ok(m) => gts.push((g.concept.clone(), m)),
            Err(e) => {
                s.gt_errors.push(e);
                return;
            }
        }
    }
    let ious: Vec<Vec<f64>> = masks
        .iter()
        .map(|m| {
            gts.iter()
                .map(|(_, g)| PixelCounts::of(m, g).iou())
                .collect()
        })
        .collect();
    let assignment = max_weight_matching(&ious);
    let mut per_concept: Vec<(String, f64)> = gts.iter().map(|(c, _)| (c.clone(), 0.0)).collect();
    let mut matched = Vec::new();
    for (row, col) in assignment.iter().enumerate() {
        if let Some(c) = *col {
            if ious[row][c] > 0.0 {
                per_concept[c].1 = ious[row][c];
                matched.push(ious[row][c]);
            }
        }
    }
    s.age.push(AgeItem {
        missed_concepts: gts.len() - matched.len(),
        unmatched_phrases: masks.len() - matched.len(),
        phrases: masks.len(),
        per_concept,
        matched,
    });
}

/// The family a fake belongs to: its forgery type, else the recipe text before its first `:`.
fn recipe_family(forgery_type: Option<&str>, recipe: Option<&str>) -> String {
    forgery_type
        .or_else(|| recipe.map(|r| r.split(':').next().unwrap_or(r).trim()))
        .filter(|f| !f.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::tasks::plan;
    use crate::forge::record::{GtSegment, TaskRecord};

    fn rect(x0: u32, y0: u32, x1: u32, y1: u32) -> GrayImage {
        GrayImage::from_fn(10, 10, |x, y| {
            image::Luma([if x >= x0 && x < x1 && y >= y0 && y < y1 {
                255
            } else {
                0
            }])
        })
    }

    fn seg(
        phrase: &str,
        region: Option<&str>,
        m: &GrayImage,
        consistent: Option<bool>,
    ) -> PredSegment {
        PredSegment {
            phrase: phrase.into(),
            region: region.map(str::to_string),
            bbox: [0; 4],
            area_px: 0,
            rle: rle::encode(m),
            consistent,
        }
    }

    #[test]
    fn a_child_concept_names_its_parent() {
        let fict = Fict::builtin();
        // Any parent of the tree and one of its atomic descendants.
        let Some(parent) = fict.concepts.iter().find(|c| !c.is_atomic()) else {
            return; // an empty tree (stub): nothing to check
        };
        let child = fict.atomic_descendants(&parent.name)[0].to_string();
        assert!(within(&child, &parent.name));
        assert!(!within(&parent.name, &child));
        assert!(within(&parent.name, &parent.name));
        assert!(!within("no such concept", &parent.name));
    }

    #[test]
    fn age_naming_and_region_questions_on_a_hand_made_sample() {
        let dir = tempfile::tempdir().unwrap();
        rect(0, 0, 4, 4).save(dir.path().join("a.png")).unwrap(); // 16 px
        rect(6, 6, 10, 10).save(dir.path().join("b.png")).unwrap(); // 16 px
        let gt = |c: &str, m: &str| GtSegment {
            concept: c.into(),
            phrase: format!("the {c}"),
            mask: m.into(),
            area_px: 16,
        };
        let sample = Sample {
            id: "s".into(),
            split: "test".into(),
            identity: "i".into(),
            collection: None,
            image: "x.png".into(),
            real_image: None,
            label: "fake".into(),
            forgery_type: Some("warp".into()),
            recipe: None,
            artifact_kind: None,
            face_bbox: [0.0, 0.0, 10.0, 10.0],
            artifact_mask: None,
            edit_mask: None,
            bbox: None,
            concepts: vec!["nose".into(), "mouth".into()],
            segments: vec![gt("nose", "a.png"), gt("mouth", "b.png")],
            tasks: vec![TaskRecord {
                task: "region".into(),
                prompt: "Is the nose edited?".into(),
                answer: "Yes.".into(),
                region: Some("nose".into()),
                bbox: None,
                positive: Some(true),
            }],
        };
        let planned = plan(&sample, &[Task::Age, Task::Region]);
        assert_eq!(planned.len(), 2);
        // Three phrases for two concepts: an exact nose (IoU 1), a half mouth (8/16 = 0.5)
        // and a stray one that overlaps the nose a little (best left unmatched).
        let phrases = vec![
            seg("the stray bit", None, &rect(0, 0, 2, 2), Some(false)),
            seg("the nose", Some("nose"), &rect(0, 0, 4, 4), None),
            seg("the mouth", Some("mouth"), &rect(6, 6, 10, 8), Some(true)),
        ];
        let pred = |request: &str| Prediction {
            fingerprint: "f".into(),
            sample_id: "s".into(),
            request: request.into(),
            verdict: Verdict::Fake,
            p_fake: 0.9,
            forgery_type: None,
            explanation_raw: String::new(),
            segments: phrases.clone(),
            width: 10,
            height: 10,
        };
        let preds: HashMap<String, Prediction> = planned
            .iter()
            .map(|p| (p.key.clone(), pred(&p.key)))
            .collect();
        let s = score_sample(&sample, dir.path(), &planned, &preds);
        assert_eq!(s.age.len(), 1);
        let a = &s.age[0];
        assert_eq!(
            a.per_concept,
            vec![("nose".into(), 1.0), ("mouth".into(), 0.5)]
        );
        assert_eq!((a.unmatched_phrases, a.missed_concepts), (1, 0));
        assert!((a.miou() - 0.75).abs() < 1e-12);
        // Named: nose, mouth (via the segments' regions; the stray phrase names nothing).
        let n = Naming {
            named: 2,
            named_right: 2,
            truth: 2,
            truth_found: 2,
        };
        assert_eq!(s.naming, vec![n]);
        assert_eq!(s.consistency, (2, 3));
        assert_eq!(s.region_questions, vec![(Task::Region, true, true)]);
        assert_eq!(s.missing_predictions, 0);
        // Without predictions nothing is scored and the requests count as missing.
        let none = score_sample(&sample, dir.path(), &planned, &HashMap::new());
        assert_eq!((none.age.len(), none.missing_predictions), (0, 2));
    }

    #[test]
    fn recipe_family_prefers_the_forgery_type() {
        assert_eq!(
            recipe_family(Some("warp"), Some("warp:smile amount=0.2")),
            "warp"
        );
        assert_eq!(
            recipe_family(None, Some("copy_move:from_chin x=1")),
            "copy_move"
        );
        assert_eq!(recipe_family(None, None), "unknown");
    }
}
