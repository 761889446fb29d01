//! report
pub mod json;
pub mod markdown;
pub mod overlay;
pub mod rle;
