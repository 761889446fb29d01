//! Which requests a sample needs for the asked tasks. Every task record of the sample becomes a
//! request with its own prompt; det/cls/loc/age fall back to one shared request with the default
//! prompt when the sample has no record for them (a user dataset without task records).

use serde::Serialize;

use crate::analysis::RegionQuery;
use crate::forge::record::{Sample, TaskRecord};

/// The task families of FiFa that `dfa eval` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Detection: real or fake.
    Det,
    /// Forgery-type classification.
    Cls,
    /// Localisation: the union of predicted masks against the artifact mask.
    Loc,
    /// Artifact-grounded explanation: phrase masks against ground-truth segments.
    Age,
    /// Textual explanation (type of edit) scored against the reference answer.
    Toe,
    /// Questions about a named region.
    Region,
    /// Questions about a box.
    Box,
}

impl Task {
    /// Every task, in report order.
    pub const ALL: [Task; 7] = [
        Task::Det,
        Task::Cls,
        Task::Loc,
        Task::Age,
        Task::Toe,
        Task::Region,
        Task::Box,
    ];

    /// The name used in dataset records and reports.
    pub fn name(self) -> &'static str {
        match self {
            Task::Det => "det",
            Task::Cls => "cls",
            Task::Loc => "loc",
            Task::Age => "age",
            Task::Toe => "toe",
            Task::Region => "region",
            Task::Box => "box",
        }
    }

    /// Scored from the default prompt when the sample has no record for it.
    fn has_default(self) -> bool {
        matches!(self, Task::Det | Task::Cls | Task::Loc | Task::Age)
    }
}

/// One use of a request's answer: the task it is scored for and the record's labels.
#[derive(Debug, Clone)]
pub struct Use {
    pub task: Task,
    /// The reference answer (None for the default prompt).
    pub reference: Option<String>,
    pub record: Option<TaskRecord>,
}

/// One request to send for a sample.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Cache key of the request within the sample: `"age#0"`, `"default#0"`.
    pub key: String,
    pub prompt: Option<String>,
    pub region: Option<RegionQuery>,
    pub uses: Vec<Use>,
}

/// The requests `sample` needs for `tasks`. Verdict, type and masks are structured outputs
/// that do not depend on how the question is phrased, so when the AGE request is made, det/cls/loc
/// are scored from it instead of costing a generation each.
pub fn plan(sample: &Sample, tasks: &[Task]) -> Vec<Planned> {
    let mut out = Vec::new();
    let mut default_uses = Vec::new();
    let mut ride_on_age = Vec::new();
    let has_age = tasks.contains(&Task::Age)
        && sample
            .tasks
            .iter()
            .any(|r| r.task.eq_ignore_ascii_case("age"));
    for &task in tasks {
        let records: Vec<&TaskRecord> = sample
            .tasks
            .iter()
            .filter(|r| r.task.eq_ignore_ascii_case(task.name()))
            .collect();
        if has_age && matches!(task, Task::Det | Task::Cls | Task::Loc) {
            let rec = records.first().copied();
            ride_on_age.push(Use {
                task,
                reference: rec.map(|r| r.answer.clone()),
                record: rec.cloned(),
            });
            continue;
        }
        if records.is_empty() {
            if task.has_default() {
                default_uses.push(Use {
                    task,
                    reference: None,
                    record: None,
                });
            }
            continue;
        }
        for (i, rec) in records.into_iter().enumerate() {
            let region = match task {
                Task::Region => rec.region.clone().map(RegionQuery::Concept),
                Task::Box => rec.bbox.map(RegionQuery::Box),
                _ => None,
            };
            out.push(Planned {
                key: format!("{}#{i}", task.name()),
                prompt: Some(rec.prompt.clone()),
                region,
                uses: vec![Use {
                    task,
                    reference: Some(rec.answer.clone()),
                    record: Some(rec.clone()),
                }],
            });
        }
    }
    if let Some(age) = out.iter_mut().find(|p| p.key == "age#0") {
        age.uses.extend(ride_on_age);
    }
    if !default_uses.is_empty() {
        out.insert(
            0,
            Planned {
                key: "default#0".into(),
                prompt: None,
                region: None,
                uses: default_uses,
            },
        );
    }
    out
}
