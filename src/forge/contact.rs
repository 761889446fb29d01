//! contact (wip)
