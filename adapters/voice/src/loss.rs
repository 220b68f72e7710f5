//! Loss recovery and reception: the last packets of each video producer, kept in the router's
//! form so any consumer's NACK can be answered by re-stamping one of them; the gaps in a
//! producer's sequence numbers that the SFU asks the producer to send again; and what the SFU
//! received of each producer, told back in receiver reports (RFC 3550 §6.4.2) so the
//! producer's browser adapts its bitrate to the losses on its uplink.

use std::time::Instant;

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

    /// Keeps `packet` under `seq`, replacing the packet [`KEPT`] numbers before it (never a
    /// newer one: a late retransmission does not push out what came after it).
    pub fn keep(&mut self, seq: u16, packet: Vec<u8>) {
        let slot = &mut self.slots[usize::from(seq) % KEPT];
        if slot
            .as_ref()
            .is_none_or(|(kept, _)| seq.wrapping_sub(*kept) < 0x8000)
        {
            *slot = Some((seq, packet));
        }
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

/// What the SFU received of one producer's stream since the last receiver report.
pub(crate) struct Reception {
    clock_rate: u32,
    /// The first sequence number, and the highest one extended with its wrap count.
    base: Option<u32>,
    highest: u32,
    received: u32,
    /// `expected` and `received` at the last report (for the fraction lost).
    expected_prior: u32,
    received_prior: u32,
    /// Interarrival jitter in timestamp units, times 16 (RFC 3550 A.8).
    jitter_q4: u32,
    /// The last packet's transit time (arrival in timestamp units minus its timestamp).
    transit: Option<u32>,
    started: Instant,
    /// The middle 32 bits of the last sender report's NTP time, and when it arrived.
    last_sr: Option<(u32, Instant)>,
}

impl Reception {
    pub fn new(clock_rate: u32, now: Instant) -> Self {
        Self {
            clock_rate,
            base: None,
            highest: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            transit: None,
            started: now,
            last_sr: None,
        }
    }

    /// Counts a packet numbered `seq` with RTP timestamp `ts`, arrived `now`.
    pub fn on_packet(&mut self, seq: u16, ts: u32, now: Instant) {
        self.received = self.received.wrapping_add(1);
        match self.base {
            None => {
                self.base = Some(u32::from(seq));
                self.highest = u32::from(seq);
            }
            Some(_) => {
                let ahead = seq.wrapping_sub(self.highest as u16);
                if ahead != 0 && ahead < 0x8000 {
                    self.highest = self.highest.wrapping_add(u32::from(ahead));
                }
            }
        }
        let arrival =
            (now.duration_since(self.started).as_secs_f64() * f64::from(self.clock_rate)) as u32;
        let transit = arrival.wrapping_sub(ts);
        if let Some(prior) = self.transit.replace(transit) {
            let d = transit.wrapping_sub(prior) as i32;
            let d = d.unsigned_abs();
            // J += (|D| - J) / 16, kept times 16.
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
    }

    /// Notes a sender report's NTP time, arrived `now`.
    pub fn on_sender_report(&mut self, ntp_time: u64, now: Instant) {
        self.last_sr = Some(((ntp_time >> 16) as u32, now));
    }

    /// The report block for `ssrc` now, which starts the next interval; `None` before any
    /// packet.
    pub fn report(
        &mut self,
        ssrc: u32,
        now: Instant,
    ) -> Option<rtcp::reception_report::ReceptionReport> {
        let base = self.base?;
        let expected = self.highest.wrapping_sub(base).wrapping_add(1);
        let lost_total = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sender_report, delay) = match self.last_sr {
            // DLSR in units of 1/65536 s.
            Some((mid, at)) => (mid, (now.duration_since(at).as_secs_f64() * 65536.0) as u32),
            None => (0, 0),
        };
        Some(rtcp::reception_report::ReceptionReport {
            ssrc,
            fraction_lost,
            // 24 bits, signed.
            total_lost: (lost_total.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF,
            last_sequence_number: self.highest,
            jitter: self.jitter_q4 >> 4,
            last_sender_report,
            delay,
        })
    }
}

/// A token bucket of bytes: `rate` bytes a second on average, with bursts of one second's
/// worth (a key frame after a quiet moment fits).
pub(crate) struct Budget {
    rate: f64,
    tokens: f64,
    at: Instant,
    /// Whether the last packet went over.
    over: bool,
}

impl Budget {
    pub fn new(kbps: u32, now: Instant) -> Self {
        let rate = f64::from(kbps) * 1000.0 / 8.0;
        Self {
            rate,
            tokens: rate,
            at: now,
            over: false,
        }
    }

    /// Whether `bytes` fit now (taken if so), and whether this packet begins an episode of
    /// going over (for one log line per episode).
    pub fn admit(&mut self, bytes: usize, now: Instant) -> (bool, bool) {
        let fits = self.take(bytes, now);
        let begins = !fits && !self.over;
        self.over = !fits;
        (fits, begins)
    }

    /// Gives back `bytes` taken for a packet that was dropped after all.
    pub fn give_back(&mut self, bytes: usize) {
        self.tokens = (self.tokens + bytes as f64).min(self.rate);
    }

    /// Whether `bytes` fit now; they are taken if so.
    pub fn take(&mut self, bytes: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
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
        // A late packet does not push out the newer one in its slot.
        h.keep(99u16.wrapping_sub(KEPT as u16), vec![1]);
        assert_eq!(h.get(99), Some(&[99u8][..]));
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

    #[test]
    fn a_budget_lets_through_its_rate_on_average() {
        let t0 = Instant::now();
        // 80 kbit/s: 10,000 bytes a second.
        let mut b = Budget::new(80, t0);
        let passed = (0..20).filter(|_| b.take(1000, t0)).count();
        assert_eq!(passed, 10, "a second's worth at once");
        let later = t0 + std::time::Duration::from_millis(500);
        let passed = (0..20).filter(|_| b.take(1000, later)).count();
        assert_eq!(passed, 5, "then what half a second adds");
        let much_later = t0 + std::time::Duration::from_secs(60);
        let passed = (0..20).filter(|_| b.take(1000, much_later)).count();
        assert_eq!(passed, 10, "never more than a second's worth saved up");
    }

    #[test]
    fn reports_count_what_was_lost_in_each_interval() {
        let t0 = Instant::now();
        let mut r = Reception::new(90_000, t0);
        assert!(r.report(1, t0).is_none(), "nothing received yet");
        // 65,530..=65,539 across the wrap, with 65,533 and 2 missing.
        for seq in (65_530u16..=65_535).chain(0..=3) {
            if seq != 65_533 && seq != 2 {
                r.on_packet(seq, u32::from(seq) * 3000, t0);
            }
        }
        let first = r.report(7, t0).expect("report");
        assert_eq!(first.ssrc, 7);
        assert_eq!(first.total_lost, 2);
        assert_eq!(first.fraction_lost, (2 * 256 / 10) as u8);
        assert_eq!(
            first.last_sequence_number,
            65_536 + 3,
            "extended across the wrap"
        );
        for seq in 4u16..14 {
            r.on_packet(seq, u32::from(seq) * 3000, t0);
        }
        let second = r.report(7, t0).expect("report");
        assert_eq!(
            (second.fraction_lost, second.total_lost),
            (0, 2),
            "a clean interval"
        );
        r.on_sender_report(0x0001_2345_6789_0000, t0);
        let third = r.report(7, t0).expect("report");
        assert_eq!(third.last_sender_report, 0x2345_6789);
    }
}
