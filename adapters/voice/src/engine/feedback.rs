//! RTCP both ways: what producers report goes on to their consumers, the SFU's receiver
//! reports and NACKs go to producers, and consumers' key-frame requests and NACKs are answered.

use super::*;

impl Engine {
    /// RTCP from a browser: a producer's sender reports go on to its consumers; a consumer's
    /// PLI or FIR becomes a key-frame request to the producer, its NACK a retransmission;
    /// everything else ends here.
    pub(super) fn on_rtcp(
        &mut self,
        transport: Uuid,
        direction: Direction,
        plain: &[u8],
        now: Instant,
    ) {
        let mut data = plain;
        let Ok(packets) = rtcp::packet::unmarshal(&mut data) else {
            return;
        };
        if direction == Direction::Send {
            use rtcp::sender_report::SenderReport;
            for p in packets {
                if let Some(sr) = p.as_any().downcast_ref::<SenderReport>() {
                    self.pass_sender_report(transport, sr, now);
                }
            }
            return;
        }
        use rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
        use rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        use rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
        let mut wanted = Vec::new();
        for p in packets {
            let any = p.as_any();
            if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                wanted.push(pli.media_ssrc);
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                wanted.extend(fir.fir.iter().map(|f| f.ssrc));
            } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                let lost: Vec<u16> = nack.nacks.iter().flat_map(|n| n.packet_list()).collect();
                self.resend(transport, nack.media_ssrc, &lost);
            }
        }
        for ssrc in wanted {
            let producer = self
                .consumer_by_ssrc
                .get(&(transport, ssrc))
                .and_then(|c| self.consumers.get(c))
                .map(|c| c.producer);
            if let Some(producer) = producer {
                self.request_key_frame(producer, now, false);
            }
        }
    }

    /// Sends a PLI for `producer` (unless one went out very recently and `force` is off).
    pub(super) fn request_key_frame(&mut self, producer_id: Uuid, now: Instant, force: bool) {
        let Some(producer) = self.producers.get_mut(&producer_id) else {
            return;
        };
        if producer.mapping.kind != Kind::Video {
            return;
        }
        if !force
            && producer
                .last_key_frame_request
                .is_some_and(|at| now.duration_since(at) < KEY_FRAME_MIN_GAP)
        {
            return;
        }
        producer.last_key_frame_request = Some(now);
        let pli = rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: FEEDBACK_SSRC,
            media_ssrc: producer.mapping.ssrc,
        };
        self.feedback(producer_id, Box::new(pli));
    }

    /// A producer's sender report, told to each of its consumers as their own: the same NTP
    /// time with the RTP time moved by the consumer's timestamp offset (so the receiver keeps
    /// audio and video of one sender in sync), and the consumer's own counts.
    pub(super) fn pass_sender_report(
        &mut self,
        transport: Uuid,
        sr: &rtcp::sender_report::SenderReport,
        now: Instant,
    ) {
        let Some(producer) = self
            .by_ssrc
            .get(&(transport, sr.ssrc))
            .and_then(|p| self.producers.get_mut(p))
        else {
            return;
        };
        if sr.ssrc != producer.mapping.ssrc {
            // The RTX stream's report: it says nothing of the media's timing.
            return;
        }
        producer.reception.on_sender_report(sr.ntp_time, now);
        let producer = &*producer;
        let mut out = Vec::new();
        for consumer_id in &producer.consumers {
            let Some(consumer) = self.consumers.get(consumer_id) else {
                continue;
            };
            if consumer.paused || !consumer.numbering.started {
                continue;
            }
            let report = rtcp::sender_report::SenderReport {
                ssrc: consumer.ssrc,
                ntp_time: sr.ntp_time,
                rtp_time: sr.rtp_time.wrapping_add(consumer.numbering.ts_offset),
                packet_count: consumer.packets_sent,
                octet_count: consumer.octets_sent,
                ..Default::default()
            };
            out.push((consumer.transport, report));
        }
        for (transport, report) in out {
            self.send_rtcp(transport, &[Box::new(report)]);
        }
    }

    /// Tells each producer what the SFU received of it since the last report.
    pub(super) fn send_receiver_reports(&mut self, now: Instant) {
        let reports: Vec<(Uuid, rtcp::reception_report::ReceptionReport)> = self
            .producers
            .values_mut()
            .filter_map(|p| Some((p.id, p.reception.report(p.mapping.ssrc, now)?)))
            .collect();
        for (producer_id, block) in reports {
            let rr = rtcp::receiver_report::ReceiverReport {
                ssrc: FEEDBACK_SSRC,
                reports: vec![block],
                ..Default::default()
            };
            self.feedback(producer_id, Box::new(rr));
        }
        self.send_caps();
    }

    /// Tells each sending browser the most it may send (REMB), when a cap applies: its
    /// transport's cap, or its share of its server's cap among the server's senders if that
    /// is less. Browsers keep their estimate under it, so the caps bind without drops.
    fn send_caps(&mut self) {
        let (own, server_cap) = (self.max_bitrate_kbps, self.max_server_bitrate_kbps);
        if own == 0 && server_cap == 0 {
            return;
        }
        let mut sending: HashMap<Uuid, Vec<u32>> = HashMap::new();
        for p in self.producers.values() {
            sending.entry(p.transport).or_default().push(p.mapping.ssrc);
        }
        let mut senders_of: HashMap<Uuid, u32> = HashMap::new();
        for t in sending.keys().filter_map(|id| self.transports.get(id)) {
            *senders_of.entry(t.server).or_default() += 1;
        }
        for (transport, ssrcs) in sending {
            let Some(server) = self.transports.get(&transport).map(|t| t.server) else {
                continue;
            };
            let share = match (server_cap, senders_of.get(&server)) {
                (0, _) | (_, None) => u32::MAX,
                (cap, Some(n)) => cap / n,
            };
            let cap = if own == 0 { share } else { own.min(share) };
            self.send_rtcp(transport, &[bwe::remb(FEEDBACK_SSRC, cap, ssrcs)]);
        }
    }

    /// Asks the producer to send the packets numbered `missed` again (a NACK).
    pub(super) fn ask_again(&mut self, producer_id: Uuid, missed: &[u16]) {
        let Some(producer) = self.producers.get(&producer_id) else {
            return;
        };
        use rtcp::transport_feedbacks::transport_layer_nack as tln;
        let nack = tln::TransportLayerNack {
            sender_ssrc: FEEDBACK_SSRC,
            media_ssrc: producer.mapping.ssrc,
            nacks: tln::nack_pairs_from_sequence_numbers(missed),
        };
        self.stats.nacks_sent.fetch_add(1, Ordering::Relaxed);
        self.feedback(producer_id, Box::new(nack));
    }

    /// Sends one RTCP feedback packet to a producer's browser.
    pub(super) fn feedback(&mut self, producer_id: Uuid, packet: Box<dyn rtcp::packet::Packet>) {
        if let Some(transport) = self.producers.get(&producer_id).map(|p| p.transport) {
            self.send_rtcp(transport, &[packet]);
        }
    }

    /// Answers a consumer's NACK: each packet still in its producer's history is stamped with
    /// the consumer's numbers again and re-sent, on the consumer's RTX stream where its device
    /// negotiated one, else as it was (plain retransmission on the same SSRC). Packets the SFU
    /// never got are asked of the producer again, so a retransmission lost on the way in is
    /// retried at the pace of the consumer's own retries.
    pub(super) fn resend(&mut self, transport: Uuid, ssrc: u32, lost: &[u16]) {
        let Some(consumer) = self
            .consumer_by_ssrc
            .get(&(transport, ssrc))
            .and_then(|c| self.consumers.get_mut(c))
        else {
            return;
        };
        let Some(history) = self
            .producers
            .get(&consumer.producer)
            .and_then(|p| p.history.as_ref())
        else {
            return;
        };
        let Some(out_transport) = self.transports.get_mut(&consumer.transport) else {
            return;
        };
        let (Some(to), Some(srtp)) = (out_transport.destination(), out_transport.srtp.as_mut())
        else {
            return;
        };
        let mut resent = Vec::new();
        let mut upstream = Vec::new();
        for &seq in lost.iter().take(loss::MAX_RESENT_PER_NACK) {
            let Some((producer_seq, ts_offset)) = consumer.numbering.unmap(seq) else {
                continue;
            };
            let Some(kept) = history.get(producer_seq) else {
                upstream.push(producer_seq);
                continue;
            };
            let mut packet = kept.to_vec();
            let Some(header) = rtp::header(&packet) else {
                continue;
            };
            rtp::stamp(
                &mut packet,
                consumer.ssrc,
                seq,
                header.timestamp.wrapping_add(ts_offset),
            );
            if let Some(rtx) = consumer.rtx {
                let Some(wrapped) =
                    rtp::to_rtx(&packet, rtx.payload_type, rtx.ssrc, consumer.rtx_seq)
                else {
                    continue;
                };
                consumer.rtx_seq = consumer.rtx_seq.wrapping_add(1);
                packet = wrapped;
            }
            if let Ok(encrypted) = srtp.tx.encrypt_rtp(&packet) {
                resent.push(encrypted);
            }
        }
        let producer_id = consumer.producer;
        for encrypted in resent {
            self.send_to(&encrypted, to);
            self.stats.retransmitted.fetch_add(1, Ordering::Relaxed);
        }
        if !upstream.is_empty() {
            self.ask_again(producer_id, &upstream);
        }
    }
}
