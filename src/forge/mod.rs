//! forge
pub mod record;
