//! phrase banks (stub)
