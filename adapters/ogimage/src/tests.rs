use super::*;

/// The decoded card: (width, height, RGBA pixels).
fn pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG")
        .into_rgba8();
    let (w, h) = image.dimensions();
    (w, h, image.into_raw())
}

/// A `w`×`h` PNG of one colour.
fn flat_png(w: u32, h: u32, rgb: (u8, u8, u8)) -> Vec<u8> {
    let mut pixmap = Pixmap::new(w, h).expect("pixmap");
    pixmap.fill(colour(rgb, 255));
    pixmap.encode_png().expect("png")
}

/// A `w`×`h` JPEG of one colour.
fn flat_jpeg(w: u32, h: u32, rgb: (u8, u8, u8)) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(w, h, image::Rgb([rgb.0, rgb.1, rgb.2]));
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("jpeg");
    out.into_inner()
}

/// The RGBA of the pixel at `x`, `y`.
fn at(card: &(u32, u32, Vec<u8>), x: u32, y: u32) -> [u8; 4] {
    let i = ((y * card.0 + x) * 4) as usize;
    [card.2[i], card.2[i + 1], card.2[i + 2], card.2[i + 3]]
}

fn near(a: [u8; 4], b: (u8, u8, u8)) -> bool {
    a[0].abs_diff(b.0) <= 6 && a[1].abs_diff(b.1) <= 6 && a[2].abs_diff(b.2) <= 6
}

fn card<'a>(name: &'a str) -> Card<'a> {
    Card {
        name,
        description: Some("A place to talk about everything."),
        member_count: 42,
        badges: &[Badge::SelfHosted, Badge::InviteOnly],
        ..Card::default()
    }
}

#[test]
fn a_card_is_a_1200_by_630_png() {
    let png = render(&card("Rust Lovers")).expect("render");
    let decoded = pixels(&png);
    assert_eq!((decoded.0, decoded.1), (WIDTH, HEIGHT));
    // Opaque everywhere.
    assert!(decoded.2.chunks_exact(4).all(|p| p[3] == 255));
}

#[test]
fn every_field_shows() {
    let base = pixels(&render(&card("Rust Lovers")).expect("render"));
    let tags = ["rust".to_owned(), "programming".to_owned()];
    let changes: Vec<(&str, Card<'_>)> = vec![
        ("name", card("Rust Haters")),
        (
            "description",
            Card {
                description: Some("Something else entirely."),
                ..card("Rust Lovers")
            },
        ),
        (
            "member count",
            Card {
                member_count: 43,
                ..card("Rust Lovers")
            },
        ),
        (
            "badges",
            Card {
                badges: &[Badge::CentralHosted, Badge::Discoverable],
                ..card("Rust Lovers")
            },
        ),
        (
            "tags",
            Card {
                tags: &tags,
                ..card("Rust Lovers")
            },
        ),
    ];
    for (what, changed) in changes {
        let other = pixels(&render(&changed).expect("render"));
        assert_ne!(base.2, other.2, "{what} changed nothing");
    }
}

#[test]
fn the_icon_replaces_the_initial_and_a_broken_one_is_ignored() {
    let red = (220, 30, 40);
    let plain = pixels(&render(&card("Rust Lovers")).expect("render"));
    let centre = (
        (ICON_X + ICON / 2.0) as u32 + 40,
        (ICON_Y + ICON / 2.0) as u32 + 40,
    );
    for icon in [flat_png(300, 200, red), flat_jpeg(64, 64, red)] {
        let with_icon = pixels(
            &render(&Card {
                icon: Some(&icon),
                ..card("Rust Lovers")
            })
            .expect("render"),
        );
        assert!(near(at(&with_icon, centre.0, centre.1), red));
        assert!(!near(at(&plain, centre.0, centre.1), red));
    }
    let broken = pixels(
        &render(&Card {
            icon: Some(b"\x89PNG\r\n\x1a\nnot really"),
            ..card("Rust Lovers")
        })
        .expect("render"),
    );
    assert_eq!(broken.2, plain.2);
}

#[test]
fn the_banner_fills_the_band_and_a_broken_one_is_ignored() {
    let blue = (20, 60, 200);
    let plain = pixels(&render(&card("Rust Lovers")).expect("render"));
    let banner = flat_png(960, 540, blue);
    let with_banner = pixels(
        &render(&Card {
            banner: Some(&banner),
            ..card("Rust Lovers")
        })
        .expect("render"),
    );
    // Top of the band: the banner as it is (the shade starts lower).
    assert!(near(at(&with_banner, 600, 20), blue));
    assert!(near(at(&with_banner, 20, 20), blue));
    assert!(!near(at(&plain, 600, 20), blue));
    // The body below is untouched by it.
    assert_eq!(at(&with_banner, 1100, 500), at(&plain, 1100, 500));
    let broken = pixels(
        &render(&Card {
            banner: Some(b"GIF89a"),
            ..card("Rust Lovers")
        })
        .expect("render"),
    );
    assert_eq!(broken.2, plain.2);
}

#[test]
fn without_an_icon_the_tile_takes_the_names_colour() {
    let name = "Rust Lovers";
    let decoded = pixels(&render(&card(name)).expect("render"));
    // The tile's top-left corner region (inside the rounding, away from the letter).
    let p = at(&decoded, (ICON_X + 30.0) as u32, (ICON_Y + 30.0) as u32);
    let expected = accent(name);
    assert!(
        p[0].abs_diff(expected.0) <= 24
            && p[1].abs_diff(expected.1) <= 24
            && p[2].abs_diff(expected.2) <= 24,
        "{p:?} vs {expected:?}"
    );
}

#[test]
fn long_and_unusual_text_still_renders() {
    let long = "word ".repeat(400);
    let unbroken = "x".repeat(500);
    let tags: Vec<String> = (0..30).map(|i| format!("tag-number-{i}")).collect();
    for (name, description) in [
        (long.as_str(), Some(long.as_str())),
        (unbroken.as_str(), Some(unbroken.as_str())),
        ("", None),
        ("   ", Some("   ")),
        ("日本語のサーバー 🎉", Some("línea\n\nnueva\r\nαβγ")),
    ] {
        let png = render(&Card {
            name,
            description,
            member_count: i64::MAX,
            badges: &[
                Badge::SelfHosted,
                Badge::Central,
                Badge::Discoverable,
                Badge::FileSharing,
                Badge::InviteOnly,
            ],
            tags: &tags,
            ..Card::default()
        })
        .expect("render");
        let decoded = pixels(&png);
        assert_eq!((decoded.0, decoded.1), (WIDTH, HEIGHT));
    }
}

#[test]
fn wrapping_keeps_to_the_width_and_marks_what_was_cut() {
    let fonts = Fonts::load().expect("fonts");
    let face = &fonts.regular;
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let lines = text::wrap(face, 30.0, &text, 600.0, 3);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert!(face.width(30.0, line) <= 600.0, "{line}");
    }
    assert!(lines[2].ends_with('…'), "{lines:?}");
    assert!(!lines[0].ends_with('…'));
    // Words are not split when they fit.
    let words: Vec<&str> = text.split_whitespace().collect();
    for word in lines[0].split(' ') {
        assert!(words.contains(&word), "{word}");
    }

    let short = text::wrap(face, 30.0, "Hello there", 600.0, 3);
    assert_eq!(short, vec!["Hello there".to_owned()]);

    // A word wider than the line is broken, and nothing is lost while it fits.
    let long = "a".repeat(120);
    let pieces = text::wrap(face, 30.0, &long, 600.0, 10);
    assert!(pieces.len() > 1);
    assert_eq!(pieces.concat(), long);

    // Line breaks are kept, blank lines dropped.
    let paragraphs = text::wrap(face, 30.0, "one\n\ntwo\nthree", 600.0, 3);
    assert_eq!(paragraphs, vec!["one", "two", "three"]);
    let cut = text::wrap(face, 30.0, "one\ntwo\nthree", 600.0, 2);
    assert_eq!(cut, vec!["one".to_owned(), "two…".to_owned()]);
}

#[test]
fn ellipsize_cuts_only_what_does_not_fit() {
    let fonts = Fonts::load().expect("fonts");
    let face = &fonts.regular;
    assert_eq!(text::ellipsize(face, 20.0, "#rust", 300.0), "#rust");
    let long = "#".to_owned() + &"verylongtag".repeat(10);
    let cut = text::ellipsize(face, 20.0, &long, 300.0);
    assert!(cut.ends_with('…'));
    assert!(face.width(20.0, &cut) <= 300.0);
    assert!(long.starts_with(cut.trim_end_matches('…')));
}

#[test]
fn member_counts_get_thousands_separators() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1000), "1,000");
    assert_eq!(thousands(1234567), "1,234,567");
    assert_eq!(thousands(-1234), "-1,234");
}
