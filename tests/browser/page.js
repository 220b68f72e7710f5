// The test page's client: what the Ecto client does for voice, over ecto-server's real /ws.
// It identifies with a token, joins a voice channel, produces and consumes through
// mediasoup-client exactly as §6 of the protocol describes, and reports what it sees.
(() => {
  const state = {
    ws: null,
    frames: [],
    waiters: [],
    device: null,
    send: null,
    recv: null,
    recvConnected: null,
    pendingProduce: [],
    producers: {},
    consumers: {},
    elements: [],
    chain: Promise.resolve(),
    errors: [],
  };

  function onFrame(frame) {
    state.frames.push(frame);
    state.waiters = state.waiters.filter((w) => {
      if (w.match(frame)) {
        w.resolve(frame);
        return false;
      }
      return true;
    });
    if (frame.event && frame.event.startsWith('voice.')) {
      // Voice frames are handled one after the other, as the client does.
      state.chain = state.chain.then(() => onVoice(frame)).catch((e) => state.errors.push(String(e && e.stack || e)));
    }
  }

  function wait(match, ms = 15000, what = 'a frame') {
    const found = state.frames.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { match, resolve };
      state.waiters.push(w);
      setTimeout(() => reject(new Error('timed out waiting for ' + what)), ms);
    });
  }

  function send(event, data) {
    state.ws.send(JSON.stringify({ event, data }));
  }

  async function onVoice(frame) {
    const d = frame.data || {};
    switch (frame.event) {
      case 'voice.router_capabilities':
        state.device = new window.MSC.Device({ handlerName: 'Chrome111' });
        await state.device.load({ routerRtpCapabilities: d.rtpCapabilities });
        break;
      case 'voice.transport_created': {
        state.send = state.device.createSendTransport(d.send);
        state.send.on('connect', ({ dtlsParameters }, cb) => {
          send('voice.connect_transport', { transport_id: state.send.id, dtls_parameters: dtlsParameters });
          cb();
        });
        state.send.on('produce', ({ kind, rtpParameters, appData }, cb, errback) => {
          state.pendingProduce.push({ cb, errback });
          send('voice.produce', { transport_id: state.send.id, kind, rtp_parameters: rtpParameters, source: appData.source });
        });
        state.recv = state.device.createRecvTransport(d.recv);
        state.recv.on('connect', ({ dtlsParameters }, cb) => {
          send('voice.connect_transport', { transport_id: state.recv.id, dtls_parameters: dtlsParameters });
          cb();
        });
        send('voice.capabilities', { rtp_capabilities: state.device.rtpCapabilities });
        break;
      }
      case 'voice.produced': {
        const p = state.pendingProduce.shift();
        if (p) p.cb({ id: d.producer_id });
        break;
      }
      case 'voice.error': {
        const p = state.pendingProduce.shift();
        if (p) p.errback(new Error(d.message));
        break;
      }
      case 'voice.new_consumer': {
        const consumer = await state.recv.consume({
          id: d.consumer_id,
          producerId: d.producer_id,
          kind: d.kind,
          rtpParameters: d.rtpParameters,
        });
        state.consumers[d.consumer_id] = { consumer, source: d.source, producerId: d.producer_id, userId: d.user_id };
        const el = document.createElement(d.kind === 'audio' ? 'audio' : 'video');
        el.autoplay = true;
        el.playsInline = true;
        if (d.kind === 'video') el.muted = true;
        el.srcObject = new MediaStream([consumer.track]);
        document.body.appendChild(el);
        state.elements.push(el);
        el.play().catch(() => {});
        send('voice.consumer_resume', { consumer_id: d.consumer_id });
        break;
      }
      case 'voice.producer_closed': {
        for (const [id, c] of Object.entries(state.consumers)) {
          if (c.producerId === d.producer_id) {
            c.consumer.close();
            c.closed = true;
          }
        }
        break;
      }
      default:
        break;
    }
  }

  window.ecto = {
    async connect(token) {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      state.ws = ws;
      ws.onmessage = (m) => onFrame(JSON.parse(m.data));
      ws.onclose = (e) => state.frames.push({ event: '__closed', data: { code: e.code, reason: e.reason } });
      await wait((f) => f.event === 'system.hello', 10000, 'system.hello');
      send('system.identify', { token, protocol_version: 1 });
      await wait((f) => f.event === 'system.ready', 10000, 'system.ready');
      setInterval(() => send('system.heartbeat', null), 1000);
      return true;
    },
    async join(channelId) {
      send('voice.join', { channel_id: channelId });
      const f = await wait((f) => f.event === 'voice.transport_created' || f.event === 'voice.error', 15000, 'voice.transport_created');
      if (f.event === 'voice.error') throw new Error('voice.error ' + JSON.stringify(f.data));
      await state.chain;
      return true;
    },
    async produce(kind, source, video = { width: 320, height: 240, frameRate: 15 }) {
      const stream = await navigator.mediaDevices.getUserMedia(kind === 'audio' ? { audio: true } : { video });
      const track = kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
      const producer = await state.send.produce({ track, appData: { source } });
      state.producers[source] = producer;
      return producer.id;
    },
    // What this page's producers sent (outbound-rtp), by source.
    async sendStats() {
      const out = {};
      for (const [source, p] of Object.entries(state.producers)) {
        if (p.closed) continue;
        for (const s of (await p.getStats()).values()) {
          if (s.type === 'outbound-rtp') {
            out[source] = {
              packetsSent: s.packetsSent || 0,
              retransmittedPacketsSent: s.retransmittedPacketsSent || 0,
              nackCount: s.nackCount || 0,
              bytesSent: s.bytesSent || 0,
              targetBitrate: s.targetBitrate || 0,
            };
          }
        }
      }
      return out;
    },
    async stats() {
      const out = [];
      for (const [id, c] of Object.entries(state.consumers)) {
        if (c.closed) continue;
        const report = await c.consumer.getStats();
        // Sender reports received for this consumer (they make the remote-outbound-rtp entry).
        let senderReports = 0;
        for (const s of report.values()) {
          if (s.type === 'remote-outbound-rtp') senderReports += s.reportsSent || 0;
        }
        for (const s of report.values()) {
          if (s.type === 'inbound-rtp') {
            out.push({
              consumer: id,
              source: c.source,
              kind: s.kind,
              packetsReceived: s.packetsReceived || 0,
              packetsLost: s.packetsLost || 0,
              totalAudioEnergy: s.totalAudioEnergy || 0,
              framesDecoded: s.framesDecoded || 0,
              freezeCount: s.freezeCount || 0,
              nackCount: s.nackCount || 0,
              // Retransmissions that came on the consumer's RTX stream.
              retransmittedPacketsReceived: s.retransmittedPacketsReceived || 0,
              concealedSamples: s.concealedSamples || 0,
              senderReports,
              user: c.userId,
            });
          }
        }
      }
      return out;
    },
    async transportStates() {
      const one = async (t) => {
        if (!t) return null;
        const report = await t.getStats();
        for (const s of report.values()) {
          if (s.type !== 'transport') continue;
          // The protocol of the candidate pair in use (udp, or tcp when UDP is blocked).
          const pair = s.selectedCandidatePairId && report.get(s.selectedCandidatePairId);
          const local = pair && report.get(pair.localCandidateId);
          return { dtlsState: s.dtlsState, iceState: s.iceState, protocol: local ? local.protocol : null };
        }
        return null;
      };
      return { send: await one(state.send), recv: await one(state.recv) };
    },
    mute(on) {
      send('voice.mute', { self_mute: on });
    },
    leave() {
      send('voice.leave', { channel_id: null });
    },
    frames(event) {
      return state.frames.filter((f) => f.event === event).map((f) => f.data);
    },
    errors() {
      return state.errors;
    },
    waitFor(event, field, value, ms) {
      return wait((f) => f.event === event && (field === null || JSON.stringify(f.data && f.data[field]) === JSON.stringify(value)), ms || 15000, event);
    },
  };
})();
