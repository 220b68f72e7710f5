//! Text: measuring, wrapping with an ellipsis, and rasterizing into a coverage mask.

use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};
use tiny_skia::Mask;

static REGULAR: &[u8] = include_bytes!("../fonts/Inter-Regular.otf");
static BOLD: &[u8] = include_bytes!("../fonts/Inter-Bold.otf");

/// Line height as a multiple of the font size.
const LINE: f32 = 1.2;
const ELLIPSIS: char = '…';

/// The two weights the card uses.
pub struct Fonts<'f> {
    pub regular: Face<'f>,
    pub bold: Face<'f>,
}

impl Fonts<'static> {
    pub fn load() -> Option<Self> {
        Some(Self {
            regular: Face(FontRef::try_from_slice(REGULAR).ok()?),
            bold: Face(FontRef::try_from_slice(BOLD).ok()?),
        })
    }
}

/// One font.
pub struct Face<'f>(FontRef<'f>);

impl Face<'_> {
    /// Whether the font has a glyph for `c`.
    pub fn has(&self, c: char) -> bool {
        self.0.glyph_id(c) != GlyphId(0)
    }

    /// The glyphs of `s` at `px` with their pen positions (from `x` on the baseline `y`), and
    /// the pen's end.
    fn layout(&self, px: f32, s: &str, x: f32, y: f32) -> (Vec<ab_glyph::Glyph>, f32) {
        let scaled = self.0.as_scaled(PxScale::from(px));
        let mut caret = x;
        let mut previous: Option<GlyphId> = None;
        let mut glyphs = Vec::with_capacity(s.len());
        for c in s.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                caret += scaled.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(px, point(caret, y)));
            caret += scaled.h_advance(id);
            previous = Some(id);
        }
        (glyphs, caret)
    }

    /// The advance width of `s` at `px`.
    pub fn width(&self, px: f32, s: &str) -> f32 {
        self.layout(px, s, 0.0, 0.0).1
    }

    /// The baseline of a line box of `px` whose top is `top`.
    fn baseline(&self, px: f32, top: f32) -> f32 {
        let scaled = self.0.as_scaled(PxScale::from(px));
        let glyph_h = scaled.ascent() - scaled.descent();
        top + (px * LINE - glyph_h) / 2.0 + scaled.ascent()
    }

    /// Where the ink of `s` is within a line box of `px` at 0: (top, height).
    pub fn ink_box(&self, px: f32, s: &str) -> (f32, f32) {
        let (glyphs, _) = self.layout(px, s, 0.0, self.baseline(px, 0.0));
        let (mut min, mut max) = (f32::MAX, f32::MIN);
        for g in glyphs {
            if let Some(o) = self.0.outline_glyph(g) {
                let b = o.px_bounds();
                min = min.min(b.min.y);
                max = max.max(b.max.y);
            }
        }
        if min > max {
            (0.0, px * LINE)
        } else {
            (min, max - min)
        }
    }

    /// Adds the coverage of `s` (line box top-left at `x`, `top`) to `mask`; the pixel box
    /// written `(x0, y0, x1, y1)` (end-exclusive), or `None` when nothing was.
    pub fn cover(
        &self,
        px: f32,
        s: &str,
        x: f32,
        top: f32,
        mask: &mut Mask,
    ) -> Option<(u32, u32, u32, u32)> {
        let (w, h) = (mask.width() as i32, mask.height() as i32);
        let data = mask.data_mut();
        let (glyphs, _) = self.layout(px, s, x, self.baseline(px, top));
        let mut bbox: Option<(i32, i32, i32, i32)> = None;
        for g in glyphs {
            let Some(outline) = self.0.outline_glyph(g) else {
                continue;
            };
            let b = outline.px_bounds();
            let (gx, gy) = (b.min.x as i32, b.min.y as i32);
            outline.draw(|dx, dy, c| {
                let (px, py) = (gx + dx as i32, gy + dy as i32);
                if px < 0 || py < 0 || px >= w || py >= h {
                    return;
                }
                let i = py as usize * w as usize + px as usize;
                let v = (c.clamp(0.0, 1.0) * 255.0).round() as u8;
                data[i] = data[i].saturating_add(v);
            });
            let (x0, y0) = (gx.max(0), gy.max(0));
            let (x1, y1) = (
                (b.max.x.ceil() as i32 + 1).min(w),
                (b.max.y.ceil() as i32 + 1).min(h),
            );
            if x0 >= x1 || y0 >= y1 {
                continue;
            }
            bbox = Some(match bbox {
                None => (x0, y0, x1, y1),
                Some((a, b, c, d)) => (a.min(x0), b.min(y0), c.max(x1), d.max(y1)),
            });
        }
        bbox.map(|(a, b, c, d)| (a as u32, b as u32, c as u32, d as u32))
    }
}

/// `s` cut so that it and an ellipsis fit in `max_w` (unchanged when it fits already).
pub fn ellipsize(face: &Face<'_>, px: f32, s: &str, max_w: f32) -> String {
    if face.width(px, s) <= max_w {
        return s.to_owned();
    }
    let mut cut: String = s.trim_end().to_owned();
    loop {
        let candidate = format!("{cut}{ELLIPSIS}");
        if cut.is_empty() || face.width(px, &candidate) <= max_w {
            return candidate;
        }
        cut.pop();
        let trimmed = cut.trim_end().len();
        cut.truncate(trimmed);
    }
}

/// `text` wrapped at word boundaries (a word wider than a line is broken where it must) into
/// at most `max_lines` lines of `max_w`; the last line ends with an ellipsis when text was
/// left out. Line breaks in `text` are kept; blank lines are dropped.
pub fn wrap(face: &Face<'_>, px: f32, text: &str, max_w: f32, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    // One line more than allowed tells that something was left out.
    let full = |lines: &Vec<String>| lines.len() > max_lines;
    'paragraphs: for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if face.width(px, &candidate) <= max_w {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                if full(&lines) {
                    break 'paragraphs;
                }
            }
            // The word alone: broken into pieces that fit when it is too wide.
            for c in word.chars() {
                line.push(c);
                if face.width(px, &line) > max_w && line.chars().count() > 1 {
                    line.pop();
                    lines.push(std::mem::take(&mut line));
                    if full(&lines) {
                        break 'paragraphs;
                    }
                    line.push(c);
                }
            }
        }
        if !line.is_empty() {
            lines.push(line);
            if full(&lines) {
                break;
            }
        }
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            // Room for the ellipsis even when the line fits exactly.
            let mut cut = last.clone();
            loop {
                let candidate = format!("{}{ELLIPSIS}", cut.trim_end());
                if cut.is_empty() || face.width(px, &candidate) <= max_w {
                    *last = candidate;
                    break;
                }
                cut.pop();
            }
        }
    }
    lines
}
