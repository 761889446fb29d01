//! report
pub mod rle;
