//! Building the token sequence for one turn: the chat template, `<image>` placeholders expanded to
//! one token per visual embedding, an optional `<region>` token; and splicing those embeddings in.
//! Positions are found by scanning the real ids, never assumed.

use candle_core::{Result, Tensor};

/// Indices of `id` in `ids`.
pub fn positions_of(ids: &[u32], id: u32) -> Vec<usize> {
    ids.iter()
        .enumerate()
        .filter(|(_, &t)| t == id)
        .map(|(i, _)| i)
        .collect()
}

/// For each `[SEG]` in a teacher-forced sequence, the position whose output PREDICTS it (the one
/// before it): that hidden state is the mask query (LISA used the `[SEG]` position itself, one
/// step late). A `[SEG]` at position 0 has no predictor and is skipped.
pub fn predicting_positions(ids: &[u32], seg_id: u32) -> Vec<usize> {
    positions_of(ids, seg_id)
        .into_iter()
        .filter(|&p| p > 0)
        .map(|p| p - 1)
        .collect()
}

/// Replace rows `positions[k]` of `base` (T, d) with row k of `rows` (n, d); differentiable.
pub fn splice_rows(base: &Tensor, positions: &[usize], rows: &Tensor) -> Result<Tensor> {
    let t = base.dim(0)?;
    if positions.len() != rows.dim(0)? {
        candle_core::bail!(
            "{} placeholder positions but {} embeddings",
            positions.len(),
            rows.dim(0)?
        );
    }
    let mut index: Vec<u32> = (0..t as u32).collect();
    for (k, &p) in positions.iter().enumerate() {
        index[p] = (t + k) as u32;
    }
    let stacked = Tensor::cat(&[base, rows], 0)?;
    let idx = Tensor::from_vec(index, t, base.device())?;
    stacked.index_select(&idx, 0)
}

/// The user message text: one `<image>` per visual token, then the question, then `<region>`
/// when a region is attached.
pub fn user_text(n_image_tokens: usize, question: &str, with_region: bool) -> String {
    let mut s = "<image>".repeat(n_image_tokens);
    s.push('\n');
    s.push_str(question.trim());
    if with_region {
        s.push_str(" <region>");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn splices_rows_at_the_real_positions() {
        let dev = Device::Cpu;
        let base =
            Tensor::from_vec((0..10).map(|x| x as f32).collect::<Vec<_>>(), (5, 2), &dev).unwrap();
        let rows = Tensor::from_vec(vec![100f32, 101., 200., 201.], (2, 2), &dev).unwrap();
        let ids = [7, 3, 9, 3, 1];
        let pos = positions_of(&ids, 3);
        assert_eq!(pos, vec![1, 3]);
        let out: Vec<Vec<f32>> = splice_rows(&base, &pos, &rows).unwrap().to_vec2().unwrap();
        assert_eq!(
            out,
            vec![
                vec![0., 1.],
                vec![100., 101.],
                vec![4., 5.],
                vec![200., 201.],
                vec![8., 9.]
            ]
        );
        assert!(splice_rows(&base, &[1], &rows).is_err());
    }

    #[test]
    fn seg_query_is_the_predicting_position() {
        // ... <p> eye </p> [SEG] ... : the state at "</p>" (index 3) predicts [SEG] (index 4).
        let (seg, p, q) = (50, 51, 52);
        let ids = [1, p, 9, q, seg, 2, seg];
        assert_eq!(predicting_positions(&ids, seg), vec![3, 5]);
        assert_eq!(predicting_positions(&[seg, 4], seg), Vec::<usize>::new());
    }
}
