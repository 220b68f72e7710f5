//! Writes an example card: `cargo run --release -p ecto-ogimage --example card -- OUT.png
//! [ICON] [BANNER]` (the README's `docs/og-image.png` is made this way, without images), and
//! prints how long one render takes.

use ecto_ogimage::{render, Badge, Card};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: card OUT.png [ICON] [BANNER]")?;
    let icon = args.next().map(std::fs::read).transpose()?;
    let banner = args.next().map(std::fs::read).transpose()?;
    let tags = ["rust", "self-hosting", "open-source", "chat"].map(String::from);
    let card = Card {
        name: "Rustaceans of the North",
        description: Some(
            "A friendly community for people who build things in Rust: systems, services, \
             games and tools. Weekly show-and-tell, a help desk for newcomers, and voice \
             rooms for pairing.",
        ),
        icon: icon.as_deref(),
        banner: banner.as_deref(),
        member_count: 12_480,
        badges: &[Badge::SelfHosted, Badge::Discoverable, Badge::FileSharing],
        tags: &tags,
    };
    let mut png = render(&card)?;
    let runs = 10;
    let start = Instant::now();
    for _ in 0..runs {
        png = render(&card)?;
    }
    let each = start.elapsed() / runs;
    std::fs::write(&out, &png)?;
    println!("{out}: {} bytes, {each:?} per render", png.len());
    Ok(())
}
