//! writer (wip)
