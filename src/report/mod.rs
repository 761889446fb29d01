//! report
pub mod overlay;
pub mod rle;
