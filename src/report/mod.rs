//! report
pub mod rle;
pub mod json;
pub mod markdown;
