//! The image pane: the conversation's image with the visible masks tinted over it, encoded for
//! the terminal by ratatui-image (half-blocks by default) and cached until something changes.
//! It remembers where the image landed so that mouse clicks map back to image pixels.

use image::{imageops, DynamicImage, RgbImage};
use ratatui::layout::{Rect, Size};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::halfblocks::Halfblocks;
use ratatui_image::protocol::Protocol;
use ratatui_image::{Image, Resize};

use crate::analysis::SegmentResult;
use crate::chat::palette::{seg_colour, tint_masks};

/// Where the image was drawn: its cells and the pixels-per-image-pixel scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub cells: Rect,
    /// Rendered pixels per image pixel.
    pub scale: f32,
    /// Pixels per cell (the picker's font size).
    pub cell_px: (u16, u16),
}

impl Placement {
    /// The image pixel under a terminal cell (its centre), if the cell shows the image.
    pub fn image_point(&self, col: u16, row: u16) -> Option<[f32; 2]> {
        let c = self.cells;
        if col < c.x || row < c.y || col >= c.x + c.width || row >= c.y + c.height {
            return None;
        }
        let px = ((col - c.x) as f32 + 0.5) * self.cell_px.0 as f32;
        let py = ((row - c.y) as f32 + 0.5) * self.cell_px.1 as f32;
        Some([(px / self.scale).floor(), (py / self.scale).floor()])
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Key {
    generation: u64,
    area: (u16, u16),
    layers: Vec<(usize, u64)>,
}

/// An encoded picture and where it goes, or why it could not be encoded.
type Encoded = Result<(Protocol, Placement), String>;

/// The image pane's state: the picker and the last encoded picture.
pub struct ImagePane {
    picker: Picker,
    cache: Option<(Key, Encoded)>,
    /// Where the image was last drawn (for the mouse).
    pub placement: Option<Placement>,
}

impl ImagePane {
    pub fn new(picker: Picker) -> Self {
        Self {
            picker,
            cache: None,
            placement: None,
        }
    }

    /// Draw `image` (or a hint when there is none) with `layers` tinted over it into `area`.
    pub fn render(
        &mut self,
        frame: &mut Frame,
        area: Rect,
        image: Option<(&RgbImage, u64)>,
        layers: &[&SegmentResult],
    ) {
        self.placement = None;
        let Some((img, generation)) = image else {
            let hint = Paragraph::new(vec![
                Line::from("no image"),
                Line::from("/image PATH loads one"),
            ])
            .style(Style::default().fg(Color::DarkGray))
            .centered();
            frame.render_widget(hint, area);
            return;
        };
        if area.width == 0 || area.height == 0 {
            return;
        }
        let key = Key {
            generation,
            area: (area.width, area.height),
            layers: layers.iter().map(|s| (s.id, s.area_px)).collect(),
        };
        if self.cache.as_ref().map(|(k, _)| k) != Some(&key) {
            let encoded = self.encode(img, area, layers);
            self.cache = Some((key, encoded));
        }
        match &self.cache {
            Some((_, Ok((protocol, placement)))) => {
                let cells = Rect {
                    x: area.x + placement.cells.x,
                    y: area.y + placement.cells.y,
                    ..placement.cells
                };
                frame.render_widget(Image::new(protocol), cells);
                self.placement = Some(Placement {
                    cells,
                    ..*placement
                });
            }
            Some((_, Err(e))) => {
                frame.render_widget(
                    Paragraph::new(format!("cannot draw the image: {e}"))
                        .style(Style::default().fg(Color::Red)),
                    area,
                );
            }
            None => {}
        }
    }

    /// Resize to fit, tint, encode. The placement's cells are relative to `area`.
    fn encode(&self, img: &RgbImage, area: Rect, layers: &[&SegmentResult]) -> Encoded {
        let font = self.picker.font_size();
        let (fw, fh) = (font.width.max(1), font.height.max(1));
        let avail_w = area.width as f32 * fw as f32;
        let avail_h = area.height as f32 * fh as f32;
        let (iw, ih) = img.dimensions();
        let scale = (avail_w / iw as f32).min(avail_h / ih as f32);
        let pw = ((iw as f32 * scale).floor() as u32).max(1);
        let ph = ((ih as f32 * scale).floor() as u32).max(1);
        let layers: Vec<_> = layers
            .iter()
            .map(|s| (s.mask.clone(), seg_colour(s.id)))
            .collect();
        let (protocol, rendered_w) = if self.picker.protocol_type() == ProtocolType::Halfblocks {
            // Half-blocks show one colour per half cell: tint at exactly that resolution, so
            // that mask outlines keep their colour, and hand it over without resampling.
            let half_h = (fh / 2).max(1) as u32;
            let lw = (pw / fw as u32).clamp(1, area.width as u32);
            let lh = (ph / half_h).clamp(1, 2 * area.height as u32);
            let low = imageops::resize(img, lw, lh, imageops::FilterType::Triangle);
            let low = tint_masks(&low, &layers, 0.45);
            let cells = Size::new(lw as u16, lh.div_ceil(2) as u16);
            let mut canvas = RgbImage::new(lw, 2 * cells.height as u32);
            imageops::replace(&mut canvas, &low, 0, 0);
            let hb = Halfblocks::new(DynamicImage::ImageRgb8(canvas), cells)
                .map_err(|e| e.to_string())?;
            (Protocol::Halfblocks(hb), lw * fw as u32)
        } else {
            let small = imageops::resize(img, pw, ph, imageops::FilterType::Triangle);
            let tinted = tint_masks(&small, &layers, 0.45);
            let cells = Size::new(
                (pw.div_ceil(fw as u32) as u16).min(area.width),
                (ph.div_ceil(fh as u32) as u16).min(area.height),
            );
            let protocol = self
                .picker
                .new_protocol(DynamicImage::ImageRgb8(tinted), cells, Resize::Fit(None))
                .map_err(|e| e.to_string())?;
            (protocol, pw)
        };
        let size = protocol.size();
        let placement = Placement {
            cells: Rect {
                x: (area.width.saturating_sub(size.width)) / 2,
                y: (area.height.saturating_sub(size.height)) / 2,
                width: size.width,
                height: size.height,
            },
            scale: rendered_w as f32 / iw as f32,
            cell_px: (fw, fh),
        };
        Ok((protocol, placement))
    }
}
