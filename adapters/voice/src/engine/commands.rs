//! The commands of the async side: joining and leaving, transports, producers and consumers.

use super::*;

impl Engine {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Join(server, channel, user, reply) => {
                let _ = reply.send(self.join(server, channel, user));
            }
            Command::Leave(channel, user, reply) => {
                let _ = reply.send(Ok(self.end_participation(channel, user)));
            }
            Command::Capabilities(channel, user, caps, reply) => {
                let _ = reply.send(self.set_capabilities(channel, user, caps));
            }
            Command::Connect(channel, user, transport, dtls, reply) => {
                let _ = reply.send(self.connect(channel, user, transport, &dtls));
            }
            Command::Produce(channel, user, request, reply) => {
                let _ = reply.send(self.produce(channel, user, request));
            }
            Command::ResumeConsumer(channel, user, consumer, reply) => {
                let _ = reply.send(self.resume_consumer(channel, user, consumer));
            }
            Command::PauseProducer(channel, user, producer, paused, reply) => {
                let _ = reply.send(self.pause_producer(channel, user, producer, paused));
            }
            Command::PauseAudio(channel, user, paused, reply) => {
                let _ = reply.send(self.pause_audio(channel, user, paused));
            }
            Command::CloseProducer(channel, user, producer, reply) => {
                let _ = reply.send(self.close_producer(channel, user, producer));
            }
        }
        self.stats
            .transports
            .store(self.transports.len() as u64, Ordering::Relaxed);
        self.stats
            .producers
            .store(self.producers.len() as u64, Ordering::Relaxed);
        self.stats
            .consumers
            .store(self.consumers.len() as u64, Ordering::Relaxed);
    }

    pub(super) fn new_transport(
        &mut self,
        server: Uuid,
        channel: Uuid,
        user: Uuid,
        direction: Direction,
    ) -> Uuid {
        let id = ecto_core::new_id();
        let mut t = Transport::new(id, channel, user, direction, self.local, &self.identity);
        t.server = server;
        if direction == Direction::Send && self.max_bitrate_kbps > 0 {
            t.budget = Some(Budget::new(self.max_bitrate_kbps, Instant::now()));
        }
        self.by_ufrag.insert(t.ufrag.clone(), id);
        self.transports.insert(id, t);
        id
    }

    pub(super) fn join(
        &mut self,
        server: Uuid,
        channel: Uuid,
        user: Uuid,
    ) -> CoreResult<Transports> {
        self.end_participation(channel, user);
        let send = self.new_transport(server, channel, user, Direction::Send);
        let recv = self.new_transport(server, channel, user, Direction::Recv);
        self.participants.insert(
            (channel, user),
            Participant {
                server,
                send,
                recv,
                capabilities: None,
                next_mid: 0,
            },
        );
        let options = |id: &Uuid| {
            self.transports
                .get(id)
                .map(|t| t.options(&self.identity, self.announced, self.tcp))
                .ok_or_else(|| CoreError::internal_msg("new transport vanished"))
        };
        Ok(Transports {
            send: options(&send)?,
            recv: options(&recv)?,
        })
    }

    pub(super) fn participant(&self, channel: Uuid, user: Uuid) -> CoreResult<&Participant> {
        self.participants
            .get(&(channel, user))
            .ok_or_else(|| refused("Not in this voice channel"))
    }

    pub(super) fn close_transport(&mut self, id: Uuid) {
        if let Some(t) = self.transports.remove(&id) {
            self.by_ufrag.remove(&t.ufrag);
            for addr in &t.known {
                if self.by_addr.get(addr) == Some(&id) {
                    self.by_addr.remove(addr);
                }
            }
        }
    }

    pub(super) fn remove_consumer(&mut self, id: Uuid) {
        if let Some(c) = self.consumers.remove(&id) {
            self.consumer_by_ssrc.remove(&(c.transport, c.ssrc));
            if let Some(p) = self.producers.get_mut(&c.producer) {
                p.consumers.retain(|x| *x != id);
            }
        }
    }

    pub(super) fn remove_producer(&mut self, id: Uuid) -> Option<ClosedProducer> {
        let p = self.producers.remove(&id)?;
        let ssrcs: Vec<u32> = std::iter::once(p.mapping.ssrc)
            .chain(p.mapping.rtx.map(|r| r.ssrc))
            .collect();
        for ssrc in &ssrcs {
            self.by_ssrc.remove(&(p.transport, *ssrc));
        }
        if let (Some(ext), Some(feedback)) = (
            p.mapping.transport_cc(),
            self.transports
                .get_mut(&p.transport)
                .and_then(|t| t.feedback.as_mut()),
        ) {
            for ssrc in &ssrcs {
                feedback.unbind(*ssrc, ext);
            }
        }
        for c in p.consumers {
            if let Some(c) = self.consumers.remove(&c) {
                self.consumer_by_ssrc.remove(&(c.transport, c.ssrc));
            }
        }
        Some(ClosedProducer {
            producer_id: p.id,
            user_id: p.user,
            channel_id: p.channel,
        })
    }

    pub(super) fn end_participation(&mut self, channel: Uuid, user: Uuid) -> Vec<ClosedProducer> {
        let Some(p) = self.participants.remove(&(channel, user)) else {
            return Vec::new();
        };
        let mine: Vec<Uuid> = self
            .producers
            .values()
            .filter(|x| x.channel == channel && x.user == user)
            .map(|x| x.id)
            .collect();
        let closed: Vec<ClosedProducer> = mine
            .into_iter()
            .filter_map(|id| self.remove_producer(id))
            .collect();
        let consuming: Vec<Uuid> = self
            .consumers
            .values()
            .filter(|c| c.transport == p.recv)
            .map(|c| c.id)
            .collect();
        for c in consuming {
            self.remove_consumer(c);
        }
        self.close_transport(p.send);
        self.close_transport(p.recv);
        closed
    }

    /// A consumer of `producer` for participant (`channel`, `user`), when its device can
    /// receive it.
    pub(super) fn make_consumer(
        &mut self,
        channel: Uuid,
        user: Uuid,
        producer_id: Uuid,
    ) -> Option<NewConsumer> {
        let participant = self.participants.get_mut(&(channel, user))?;
        let caps = participant.capabilities.as_ref()?;
        let producer = self.producers.get(&producer_id)?;
        let ssrc: u32 = rand::random::<u32>() | 1;
        let mid = participant.next_mid.to_string();
        let (params, rtx) = caps::consumer_parameters(&producer.mapping, caps, ssrc, &mid)?;
        participant.next_mid += 1;
        let id = ecto_core::new_id();
        let consumer = Consumer {
            id,
            producer: producer_id,
            user,
            transport: participant.recv,
            ssrc,
            paused: true,
            numbering: Numbering::default(),
            packets_sent: 0,
            octets_sent: 0,
            rtx,
            rtx_seq: rand::random(),
        };
        let new = NewConsumer {
            for_user: user,
            consumer_id: id,
            producer_id,
            user_id: producer.user,
            kind: producer.mapping.kind.as_str().to_owned(),
            rtp_parameters: params,
            source: producer.source.clone(),
        };
        self.consumer_by_ssrc.insert((consumer.transport, ssrc), id);
        self.consumers.insert(id, consumer);
        if let Some(p) = self.producers.get_mut(&producer_id) {
            p.consumers.push(id);
        }
        Some(new)
    }

    pub(super) fn set_capabilities(
        &mut self,
        channel: Uuid,
        user: Uuid,
        caps: Value,
    ) -> CoreResult<Vec<NewConsumer>> {
        if !caps["codecs"].is_array() {
            return Err(refused("rtp_capabilities must have codecs"));
        }
        let participant = self
            .participants
            .get_mut(&(channel, user))
            .ok_or_else(|| refused("Not in this voice channel"))?;
        participant.capabilities = Some(caps);
        let existing: Vec<Uuid> = self
            .producers
            .values()
            .filter(|p| p.channel == channel && p.user != user)
            .filter(|p| {
                !self
                    .consumers
                    .values()
                    .any(|c| c.producer == p.id && c.user == user)
            })
            .map(|p| p.id)
            .collect();
        Ok(existing
            .into_iter()
            .filter_map(|p| self.make_consumer(channel, user, p))
            .collect())
    }

    pub(super) fn connect(
        &mut self,
        channel: Uuid,
        user: Uuid,
        id: Uuid,
        dtls: &Value,
    ) -> CoreResult<()> {
        let fingerprints: Vec<String> = dtls["fingerprints"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter(|f| {
                        f["algorithm"]
                            .as_str()
                            .is_some_and(|a| a.eq_ignore_ascii_case("sha-256"))
                    })
                    .filter_map(|f| f["value"].as_str().map(str::to_ascii_uppercase))
                    .collect()
            })
            .unwrap_or_default();
        if fingerprints.is_empty() {
            return Err(refused("dtls_parameters needs a sha-256 fingerprint"));
        }
        let transport = self
            .transports
            .get_mut(&id)
            .filter(|t| t.channel == channel && t.user == user)
            .ok_or_else(|| refused("Unknown transport"))?;
        if let Err(e) = transport.connect(fingerprints, &self.identity) {
            tracing::info!(transport = %id, error = %e, "voice transport refused");
            self.lose(id);
            return Err(refused("Transport failed"));
        }
        Ok(())
    }

    pub(super) fn produce(
        &mut self,
        channel: Uuid,
        user: Uuid,
        request: ProduceRequest,
    ) -> CoreResult<Produced> {
        let send = self.participant(channel, user)?.send;
        if request.transport_id != send {
            return Err(refused("Producers go on the send transport"));
        }
        let kind =
            Kind::parse(&request.kind).ok_or_else(|| refused("kind must be audio or video"))?;
        let mapping = caps::map_producer(kind, &request.rtp_parameters).map_err(refused)?;
        let ssrcs: Vec<u32> = std::iter::once(mapping.ssrc)
            .chain(mapping.rtx.map(|r| r.ssrc))
            .collect();
        if ssrcs.iter().any(|s| self.by_ssrc.contains_key(&(send, *s))) {
            return Err(refused("That SSRC is already produced"));
        }
        let id = ecto_core::new_id();
        for ssrc in &ssrcs {
            self.by_ssrc.insert((send, *ssrc), id);
        }
        if let (Some(ext), Some(feedback)) = (
            mapping.transport_cc(),
            self.transports
                .get_mut(&send)
                .and_then(|t| t.feedback.as_mut()),
        ) {
            for ssrc in &ssrcs {
                feedback.bind(*ssrc, ext);
            }
        }
        let history = (kind == Kind::Video).then(History::new);
        let reception = Reception::new(mapping.codec.clock_rate, Instant::now());
        self.producers.insert(
            id,
            Producer {
                id,
                channel,
                user,
                transport: send,
                source: request.source,
                mapping,
                paused: request.paused,
                consumers: Vec::new(),
                last_key_frame_request: None,
                history,
                gaps: Gaps::default(),
                reception,
            },
        );
        let others: Vec<Uuid> = self
            .participants
            .keys()
            .filter(|(c, u)| *c == channel && *u != user)
            .map(|(_, u)| *u)
            .collect();
        let consumers = others
            .into_iter()
            .filter_map(|other| self.make_consumer(channel, other, id))
            .collect();
        Ok(Produced {
            producer_id: id,
            consumers,
        })
    }

    pub(super) fn resume_consumer(
        &mut self,
        channel: Uuid,
        user: Uuid,
        id: Uuid,
    ) -> CoreResult<()> {
        let recv = self.participant(channel, user)?.recv;
        let consumer = self
            .consumers
            .get_mut(&id)
            .filter(|c| c.transport == recv)
            .ok_or_else(|| refused("Unknown consumer"))?;
        if consumer.paused {
            consumer.paused = false;
            consumer.numbering.resync = true;
            let producer = consumer.producer;
            if self
                .producers
                .get(&producer)
                .is_some_and(|p| p.mapping.kind == Kind::Video)
            {
                self.key_frames.push(KeyFrames {
                    producer,
                    due: Instant::now(),
                    left: KEY_FRAME_REQUESTS,
                });
            }
        }
        Ok(())
    }

    pub(super) fn set_paused(&mut self, id: Uuid, paused: bool) {
        let Some(p) = self.producers.get_mut(&id) else {
            return;
        };
        if p.paused == paused {
            return;
        }
        p.paused = paused;
        if !paused {
            for c in p.consumers.clone() {
                if let Some(c) = self.consumers.get_mut(&c) {
                    c.numbering.resync = true;
                }
            }
            self.request_key_frame(id, Instant::now(), true);
        }
    }

    pub(super) fn pause_producer(
        &mut self,
        channel: Uuid,
        user: Uuid,
        id: Uuid,
        paused: bool,
    ) -> CoreResult<()> {
        self.own_producer(channel, user, id)?;
        self.set_paused(id, paused);
        Ok(())
    }

    /// `Ok` when producer `id` is `user`'s in `channel`; a producer of anyone else is refused
    /// as unknown.
    pub(super) fn own_producer(&self, channel: Uuid, user: Uuid, id: Uuid) -> CoreResult<()> {
        match self.producers.get(&id) {
            Some(p) if p.channel == channel && p.user == user => Ok(()),
            _ => Err(refused("Unknown producer")),
        }
    }

    pub(super) fn pause_audio(
        &mut self,
        channel: Uuid,
        user: Uuid,
        paused: bool,
    ) -> CoreResult<()> {
        let audio: Vec<Uuid> = self
            .producers
            .values()
            .filter(|p| p.channel == channel && p.user == user && p.mapping.kind == Kind::Audio)
            .map(|p| p.id)
            .collect();
        for id in audio {
            self.set_paused(id, paused);
        }
        Ok(())
    }

    pub(super) fn close_producer(
        &mut self,
        channel: Uuid,
        user: Uuid,
        id: Uuid,
    ) -> CoreResult<ClosedProducer> {
        self.own_producer(channel, user, id)?;
        self.remove_producer(id)
            .ok_or_else(|| refused("Unknown producer"))
    }
}
