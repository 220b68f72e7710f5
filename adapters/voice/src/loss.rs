//! Loss recovery for video: the last packets of each video producer, kept in the router's form
//! so any consumer's NACK can be answered by re-stamping one of them, and the gaps in a
//! producer's sequence numbers that the SFU asks the producer to send again.

/// Packets kept per video producer: a ring indexed by sequence number. At 1,200 bytes a packet
/// this bounds the memory of one producer's history to about 600 KiB, and covers about a second
/// of 4 Mbit/s video, more than a round trip on any path a call survives.
pub(crate) const KEPT: usize = 512;
/// The longest gap the SFU asks again for; a longer one (a stream restart, a long outage) is
/// left to a key-frame request.
pub(crate) const MAX_GAP: u16 = 64;
/// Retransmissions one NACK may cause at most.
pub(crate) const MAX_RESENT_PER_NACK: usize = 128;

/// The last [`KEPT`] packets of a producer, by sequence number.
pub(crate) struct History {
    slots: Vec<Option<(u16, Vec<u8>)>>,
}

impl History {
    pub fn new() -> Self {
        Self {
            slots: (0..KEPT).map(|_| None).collect(),
        }
    }

    /// Keeps `packet` under `seq`, replacing the packet [`KEPT`] numbers before it.
    pub fn keep(&mut self, seq: u16, packet: Vec<u8>) {
        self.slots[usize::from(seq) % KEPT] = Some((seq, packet));
    }

    /// The packet numbered `seq`, if it is still kept.
    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        match &self.slots[usize::from(seq) % KEPT] {
            Some((kept, packet)) if *kept == seq => Some(packet),
            _ => None,
        }
    }
}

/// The highest sequence number seen of a producer, and what a packet ahead of it skipped.
#[derive(Default)]
pub(crate) struct Gaps {
    highest: Option<u16>,
}

impl Gaps {
    /// Records `seq`; returns the numbers it skipped (empty for the next packet in order, a
    /// late or repeated packet, or a jump longer than [`MAX_GAP`]).
    pub fn on_packet(&mut self, seq: u16) -> Vec<u16> {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return Vec::new();
        };
        let ahead = seq.wrapping_sub(highest);
        if ahead == 0 || ahead >= 0x8000 {
            return Vec::new();
        }
        self.highest = Some(seq);
        if ahead == 1 || ahead > MAX_GAP {
            return Vec::new();
        }
        (1..ahead).map(|i| highest.wrapping_add(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_last_packets_by_number() {
        let mut h = History::new();
        for seq in 65_000u16..=65_535 {
            h.keep(seq, vec![seq as u8]);
        }
        for seq in 0u16..100 {
            h.keep(seq, vec![seq as u8]);
        }
        assert_eq!(h.get(99), Some(&[99u8][..]));
        assert_eq!(h.get(65_535), Some(&[255u8][..]), "across the wrap");
        assert_eq!(h.get(100), None, "not sent yet");
        // 65,100 was replaced by 76 (the same slot, 512 numbers later).
        assert_eq!(h.get(65_100), None, "older than the ring");
    }

    #[test]
    fn gaps_are_what_a_packet_ahead_skipped() {
        let mut g = Gaps::default();
        assert!(g.on_packet(65_533).is_empty(), "the first packet");
        assert!(g.on_packet(65_534).is_empty(), "in order");
        assert_eq!(g.on_packet(1), vec![65_535, 0], "across the wrap");
        assert!(g.on_packet(0).is_empty(), "a late packet");
        assert!(g.on_packet(1).is_empty(), "a repeated packet");
        assert!(g.on_packet(1 + MAX_GAP + 1).is_empty(), "too long a jump");
        assert_eq!(g.on_packet(MAX_GAP + 4), vec![MAX_GAP + 3]);
    }
}
