//! The link card of a community server (reference §2.6, `GET /og-image`): a 1200×630 PNG with
//! the server's banner as a top band, its icon (or the name's initial on a coloured square),
//! name, member count, description, badges and tags.
//!
//! Pure: [`render`] takes the card's data, with the icon and banner as the encoded bytes of
//! the stored uploads, and returns the PNG. It does no IO and depends on no other ecto crate.
//! The font (Inter, SIL Open Font License 1.1, see `fonts/OFL.txt`) is compiled in. An icon or
//! banner that does not decode is drawn as if there were none.

mod text;

use image::imageops::FilterType;
use text::{Face, Fonts};
use tiny_skia::{
    Color, FillRule, FilterQuality, GradientStop, IntSize, LinearGradient, Mask, Paint, Path,
    PathBuilder, Pattern, Pixmap, Point, Rect, Shader, SpreadMode, Transform,
};

/// Width of the card in pixels.
pub const WIDTH: u32 = 1200;
/// Height of the card in pixels.
pub const HEIGHT: u32 = 630;

/// A badge of the card, each with its own colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    SelfHosted,
    CentralHosted,
    Central,
    Discoverable,
    FileSharing,
    InviteOnly,
}

impl Badge {
    /// The words on the badge.
    pub fn label(self) -> &'static str {
        match self {
            Badge::SelfHosted => "Self-Hosted",
            Badge::CentralHosted => "Central Hosted",
            Badge::Central => "Central",
            Badge::Discoverable => "Discoverable",
            Badge::FileSharing => "File Sharing",
            Badge::InviteOnly => "Invite Only",
        }
    }

    fn colour(self) -> (u8, u8, u8) {
        match self {
            Badge::SelfHosted => (87, 242, 135),
            Badge::CentralHosted => (88, 166, 255),
            Badge::Central => (168, 139, 250),
            Badge::Discoverable => (45, 212, 191),
            Badge::FileSharing => (251, 191, 36),
            Badge::InviteOnly => (248, 113, 113),
        }
    }
}

/// What the card shows.
#[derive(Debug, Clone, Default)]
pub struct Card<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    /// The stored icon upload (PNG, JPEG, GIF or WebP bytes).
    pub icon: Option<&'a [u8]>,
    /// The stored banner upload.
    pub banner: Option<&'a [u8]>,
    pub member_count: i64,
    pub badges: &'a [Badge],
    /// Shown as `#tag` after the badges, as many as fit on the line.
    pub tags: &'a [String],
}

/// Why no card was made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the embedded font does not parse")]
    Font,
    #[error("the canvas could not be allocated")]
    Canvas,
    #[error("PNG encoding failed: {0}")]
    Encode(String),
}

// Layout, in pixels.
const MARGIN: f32 = 64.0;
const BAND: f32 = 236.0;
const ICON: f32 = 176.0;
const ICON_X: f32 = MARGIN;
const ICON_Y: f32 = BAND - ICON / 2.0;
const ICON_RADIUS: f32 = 44.0;
const RING: f32 = 8.0;
const NAME_X: f32 = ICON_X + ICON + 36.0;
const FOOTER_Y: f32 = 548.0;
const PILL_H: f32 = 44.0;

// Colours.
const BODY: (u8, u8, u8) = (22, 24, 29);
const BODY_LOW: (u8, u8, u8) = (28, 31, 38);
const TEXT: (u8, u8, u8) = (246, 247, 249);
const MUTED: (u8, u8, u8) = (170, 176, 186);
const SOFT: (u8, u8, u8) = (206, 211, 218);
const TAG_BG: (u8, u8, u8) = (43, 46, 54);

/// Colours for a server without an icon or banner, picked by its name.
const ACCENTS: [(u8, u8, u8); 8] = [
    (88, 101, 242),
    (59, 165, 93),
    (235, 69, 158),
    (230, 126, 34),
    (237, 66, 69),
    (22, 160, 133),
    (155, 89, 182),
    (41, 128, 185),
];

/// Renders `card` as a 1200×630 PNG.
pub fn render(card: &Card<'_>) -> Result<Vec<u8>, Error> {
    let fonts = Fonts::load().ok_or(Error::Font)?;
    let mut canvas = Canvas::new().ok_or(Error::Canvas)?;
    let accent = accent(card.name);

    canvas.background(accent, card.banner);
    canvas.icon(&fonts, accent, card);

    // Name beside the icon, under the band; one line at 56 px, else two at 46 px.
    let name_w = WIDTH as f32 - MARGIN - NAME_X;
    let name = one_line(card.name.trim());
    let (px, lines) = if fonts.bold.width(56.0, &name) <= name_w {
        (56.0, vec![name])
    } else {
        (46.0, text::wrap(&fonts.bold, 46.0, &name, name_w, 2))
    };
    let mut y = BAND + 14.0;
    for line in &lines {
        canvas.text(&fonts.bold, px, line, NAME_X, y, TEXT, 255);
        y += px * 1.2;
    }
    // The member count under it.
    let members = format!(
        "{} {}",
        thousands(card.member_count),
        if card.member_count == 1 {
            "member"
        } else {
            "members"
        }
    );
    let dot_y = y + 6.0 + 26.0 * 0.62;
    canvas.circle(NAME_X + 7.0, dot_y, 7.0, MUTED, 255);
    canvas.text(
        &fonts.regular,
        26.0,
        &members,
        NAME_X + 24.0,
        y + 6.0,
        MUTED,
        255,
    );
    y += 6.0 + 26.0 * 1.3;

    // The description across the card, as many lines as fit above the footer (at most 4).
    if let Some(description) = card.description.map(str::trim).filter(|d| !d.is_empty()) {
        let top = y.max(ICON_Y + ICON + RING) + 26.0;
        let line_h = 30.0 * 1.4;
        let room = ((FOOTER_Y - 22.0 - top) / line_h).floor().clamp(1.0, 4.0) as usize;
        let width = WIDTH as f32 - 2.0 * MARGIN;
        let mut ly = top;
        for line in text::wrap(&fonts.regular, 30.0, description, width, room) {
            canvas.text(&fonts.regular, 30.0, &line, MARGIN, ly, SOFT, 255);
            ly += line_h;
        }
    }

    canvas.footer(&fonts, card);
    canvas
        .pixmap
        .encode_png()
        .map_err(|e| Error::Encode(e.to_string()))
}

/// The server's colour when it has no images: stable for a name.
fn accent(name: &str) -> (u8, u8, u8) {
    // FNV-1a: the same name gives the same colour in every process.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    ACCENTS[(hash % ACCENTS.len() as u32) as usize]
}

/// `text` with every run of whitespace (newlines included) as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `1234567` → `1,234,567`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn colour((r, g, b): (u8, u8, u8), a: u8) -> Color {
    Color::from_rgba8(r, g, b, a)
}

fn scale((r, g, b): (u8, u8, u8), f: f32) -> (u8, u8, u8) {
    let s = |c: u8| (f32::from(c) * f).round().clamp(0.0, 255.0) as u8;
    (s(r), s(g), s(b))
}

fn solid(c: (u8, u8, u8), a: u8) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(colour(c, a));
    paint.anti_alias = true;
    paint
}

fn gradient(from: Point, to: Point, stops: Vec<GradientStop>) -> Paint<'static> {
    // A gradient that cannot be made (never with the stops here) paints nothing.
    let shader = LinearGradient::new(from, to, stops, SpreadMode::Pad, Transform::identity())
        .unwrap_or(Shader::SolidColor(Color::TRANSPARENT));
    Paint {
        shader,
        anti_alias: true,
        ..Paint::default()
    }
}

/// A rectangle with rounded corners.
fn rounded(x: f32, y: f32, w: f32, h: f32, r: f32) -> Option<Path> {
    let r = r.min(w / 2.0).min(h / 2.0);
    // Control-point distance of a quarter circle drawn as one cubic.
    let k = r * 0.552_284_8;
    let mut pb = PathBuilder::new();
    pb.move_to(x + r, y);
    pb.line_to(x + w - r, y);
    pb.cubic_to(x + w - r + k, y, x + w, y + r - k, x + w, y + r);
    pb.line_to(x + w, y + h - r);
    pb.cubic_to(x + w, y + h - r + k, x + w - r + k, y + h, x + w - r, y + h);
    pb.line_to(x + r, y + h);
    pb.cubic_to(x + r - k, y + h, x, y + h - r + k, x, y + h - r);
    pb.line_to(x, y + r);
    pb.cubic_to(x, y + r - k, x + r - k, y, x + r, y);
    pb.close();
    pb.finish()
}

/// `bytes` decoded and cropped to fill `w`×`h` (premultiplied), or `None` when they are not
/// an image this crate reads, or one too large to decode safely.
fn decode_fill(bytes: &[u8], w: u32, h: u32) -> Option<Pixmap> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(8192);
    limits.max_image_height = Some(8192);
    limits.max_alloc = Some(128 * 1024 * 1024);
    reader.limits(limits);
    let decoded = reader.decode().ok()?;
    let rgba = decoded
        .resize_to_fill(w, h, FilterType::CatmullRom)
        .into_rgba8();
    let (iw, ih) = rgba.dimensions();
    let mut data = rgba.into_raw();
    for px in data.chunks_exact_mut(4) {
        let a = u16::from(px[3]);
        for c in &mut px[..3] {
            *c = ((u16::from(*c) * a + 127) / 255) as u8;
        }
    }
    Pixmap::from_vec(data, IntSize::from_wh(iw, ih)?)
}

/// The pixmap being drawn, and a coverage mask the size of it for text.
struct Canvas {
    pixmap: Pixmap,
    mask: Mask,
}

impl Canvas {
    fn new() -> Option<Self> {
        Some(Self {
            pixmap: Pixmap::new(WIDTH, HEIGHT)?,
            mask: Mask::new(WIDTH, HEIGHT)?,
        })
    }

    fn fill(&mut self, path: &Path, paint: &Paint<'_>) {
        self.pixmap
            .fill_path(path, paint, FillRule::Winding, Transform::identity(), None);
    }

    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, paint: &Paint<'_>) {
        if let Some(rect) = Rect::from_xywh(x, y, w, h) {
            self.pixmap
                .fill_rect(rect, paint, Transform::identity(), None);
        }
    }

    fn circle(&mut self, cx: f32, cy: f32, r: f32, c: (u8, u8, u8), a: u8) {
        if let Some(path) = PathBuilder::from_circle(cx, cy, r) {
            self.fill(&path, &solid(c, a));
        }
    }

    /// The body, and the band: the banner when it decodes, else a gradient of the accent.
    fn background(&mut self, accent: (u8, u8, u8), banner: Option<&[u8]>) {
        let body = gradient(
            Point::from_xy(0.0, BAND),
            Point::from_xy(0.0, HEIGHT as f32),
            vec![
                GradientStop::new(0.0, colour(BODY, 255)),
                GradientStop::new(1.0, colour(BODY_LOW, 255)),
            ],
        );
        self.rect(0.0, 0.0, WIDTH as f32, HEIGHT as f32, &body);

        let band = banner.and_then(|b| decode_fill(b, WIDTH, BAND as u32));
        match band {
            Some(image) => {
                self.pixmap.draw_pixmap(
                    0,
                    0,
                    image.as_ref(),
                    &tiny_skia::PixmapPaint::default(),
                    Transform::identity(),
                    None,
                );
                // Darkened towards its lower edge, so the icon's ring sits on it cleanly.
                let shade = gradient(
                    Point::from_xy(0.0, BAND * 0.45),
                    Point::from_xy(0.0, BAND),
                    vec![
                        GradientStop::new(0.0, colour(BODY, 0)),
                        GradientStop::new(1.0, colour(BODY, 150)),
                    ],
                );
                self.rect(0.0, 0.0, WIDTH as f32, BAND, &shade);
            }
            None => {
                let paint = gradient(
                    Point::from_xy(0.0, 0.0),
                    Point::from_xy(WIDTH as f32, BAND),
                    vec![
                        GradientStop::new(0.0, colour(scale(accent, 0.95), 255)),
                        GradientStop::new(1.0, colour(scale(accent, 0.45), 255)),
                    ],
                );
                self.rect(0.0, 0.0, WIDTH as f32, BAND, &paint);
                // Two soft discs for depth.
                self.circle(WIDTH as f32 - 150.0, 10.0, 210.0, (255, 255, 255), 22);
                self.circle(
                    WIDTH as f32 - 420.0,
                    BAND + 40.0,
                    150.0,
                    (255, 255, 255),
                    14,
                );
                // The discs stop at the band.
                self.rect(0.0, BAND, WIDTH as f32, HEIGHT as f32 - BAND, &body);
            }
        }
    }

    /// The icon on a ring of the body's colour; the initial on the accent without one.
    fn icon(&mut self, fonts: &Fonts<'_>, accent: (u8, u8, u8), card: &Card<'_>) {
        if let Some(ring) = rounded(
            ICON_X - RING,
            ICON_Y - RING,
            ICON + 2.0 * RING,
            ICON + 2.0 * RING,
            ICON_RADIUS + RING,
        ) {
            self.fill(&ring, &solid(BODY, 255));
        }
        let Some(shape) = rounded(ICON_X, ICON_Y, ICON, ICON, ICON_RADIUS) else {
            return;
        };
        if let Some(image) = card
            .icon
            .and_then(|b| decode_fill(b, ICON as u32, ICON as u32))
        {
            // Transparent icons sit on a neutral tile.
            self.fill(&shape, &solid(TAG_BG, 255));
            let paint = Paint {
                shader: Pattern::new(
                    image.as_ref(),
                    SpreadMode::Pad,
                    FilterQuality::Nearest,
                    1.0,
                    Transform::from_translate(ICON_X, ICON_Y),
                ),
                anti_alias: true,
                ..Paint::default()
            };
            self.fill(&shape, &paint);
            return;
        }
        let tile = gradient(
            Point::from_xy(ICON_X, ICON_Y),
            Point::from_xy(ICON_X + ICON, ICON_Y + ICON),
            vec![
                GradientStop::new(0.0, colour(accent, 255)),
                GradientStop::new(1.0, colour(scale(accent, 0.7), 255)),
            ],
        );
        self.fill(&shape, &tile);
        let initial: String = card
            .name
            .trim()
            .chars()
            .next()
            .filter(|c| fonts.bold.has(*c))
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default();
        if !initial.is_empty() {
            let px = 92.0;
            let w = fonts.bold.width(px, &initial);
            let (top, height) = fonts.bold.ink_box(px, &initial);
            let x = ICON_X + (ICON - w) / 2.0;
            let y = ICON_Y + (ICON - height) / 2.0 - top;
            self.text(&fonts.bold, px, &initial, x, y, (255, 255, 255), 255);
        }
    }

    /// Badges, then tags, as pills on one line, and "Join on Ecto" at the right.
    fn footer(&mut self, fonts: &Fonts<'_>, card: &Card<'_>) {
        let brand_px = 26.0;
        let join = "Join on ";
        let ecto = "Ecto";
        let brand_w = fonts.regular.width(brand_px, join) + fonts.bold.width(brand_px, ecto);
        let brand_x = WIDTH as f32 - MARGIN - brand_w;
        let text_y = FOOTER_Y + (PILL_H - brand_px * 1.2) / 2.0;
        self.text(&fonts.regular, brand_px, join, brand_x, text_y, MUTED, 255);
        let ex = brand_x + fonts.regular.width(brand_px, join);
        self.text(&fonts.bold, brand_px, ecto, ex, text_y, TEXT, 255);

        let limit = brand_x - 32.0;
        let mut x = MARGIN;
        let px = 21.0;
        let pill_text_y = FOOTER_Y + (PILL_H - px * 1.2) / 2.0;
        for badge in card.badges {
            let label = badge.label();
            let w = fonts.bold.width(px, label) + 2.0 * 18.0 + 16.0;
            if x + w > limit {
                return;
            }
            let c = badge.colour();
            if let Some(pill) = rounded(x, FOOTER_Y, w, PILL_H, PILL_H / 2.0) {
                self.fill(&pill, &solid(c, 40));
            }
            self.circle(x + 22.0, FOOTER_Y + PILL_H / 2.0, 5.0, c, 255);
            self.text(&fonts.bold, px, label, x + 34.0, pill_text_y, c, 255);
            x += w + 12.0;
        }
        for tag in card.tags {
            let label = format!("#{}", one_line(tag));
            let label = text::ellipsize(&fonts.regular, px, &label, 320.0);
            let w = fonts.regular.width(px, &label) + 2.0 * 18.0;
            if x + w > limit {
                return;
            }
            if let Some(pill) = rounded(x, FOOTER_Y, w, PILL_H, PILL_H / 2.0) {
                self.fill(&pill, &solid(TAG_BG, 255));
            }
            self.text(&fonts.regular, px, &label, x + 18.0, pill_text_y, SOFT, 255);
            x += w + 12.0;
        }
    }

    /// Draws `s` with its line box's top at `top` and its left edge at `x`.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        face: &Face<'_>,
        px: f32,
        s: &str,
        x: f32,
        top: f32,
        c: (u8, u8, u8),
        a: u8,
    ) {
        let Some((x0, y0, x1, y1)) = face.cover(px, s, x, top, &mut self.mask) else {
            return;
        };
        let paint = solid(c, a);
        if let Some(rect) = Rect::from_ltrb(x0 as f32, y0 as f32, x1 as f32, y1 as f32) {
            self.pixmap
                .fill_rect(rect, &paint, Transform::identity(), Some(&self.mask));
        }
        // Clear what was covered, for the next text.
        let data = self.mask.data_mut();
        for row in y0..y1 {
            let start = row as usize * WIDTH as usize;
            data[start + x0 as usize..start + x1 as usize].fill(0);
        }
    }
}

#[cfg(test)]
mod tests;
