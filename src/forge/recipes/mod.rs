//! recipes (wip)
