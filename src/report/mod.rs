//! report
pub mod overlay;
pub mod rle;
pub mod json;
pub mod markdown;
