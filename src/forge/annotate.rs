//! annotate (wip)
