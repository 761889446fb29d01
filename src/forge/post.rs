//! post (wip)
