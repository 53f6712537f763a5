// Plays the daemon's /api/audio chunks in order and measures their loudness for the mouth.
// Does not own the socket (connection.js) or the mouth's motion (animator.js). Chunks of
// one utterance share a sequence number: a new ``audio-seq`` (or a chunk with a newer seq)
// flushes everything queued or playing from the old one; ``audio-done`` lets the queue
// finish. Decoding is chained so chunks play in the order they arrived even though
// decodeAudioData is asynchronous.

const RMS_GAIN = 3.5; // speech RMS of ~0.25 opens the mouth fully

function base64ToBuffer(data) {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

export class AudioPlayer {
  constructor() {
    this.seq = -1;
    this.chunksPlayed = 0;
    this.lastChunkAt = -Infinity; // performance.now() of the last chunk received
    this._context = null;
    this._analyser = null;
    this._samples = null;
    this._sources = new Set();
    this._nextStart = 0;
    this._decoding = Promise.resolve();
    this._pending = 0;
    this._generation = 0;
  }

  _ensureContext() {
    if (this._context) return this._context;
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    analyser.connect(context.destination);
    this._context = context;
    this._analyser = analyser;
    this._samples = new Float32Array(analyser.fftSize);
    return context;
  }

  /** Browsers start audio only after a user gesture; call this from one. */
  unlock() {
    const context = this._ensureContext();
    if (context.state === "suspended") context.resume();
  }

  get playing() {
    return this._sources.size > 0 || this._pending > 0;
  }

  newSequence(seq) {
    if (typeof seq !== "number" || seq === this.seq) return;
    this.flush();
    this.seq = seq;
  }

  flush() {
    this._generation += 1;
    for (const source of this._sources) {
      try {
        source.stop();
      } catch {
        // already stopped
      }
    }
    this._sources.clear();
    this._pending = 0;
    this._nextStart = 0;
  }

  chunk(message) {
    if (typeof message.data !== "string") return;
    const seq = typeof message.seq === "number" ? message.seq : this.seq;
    if (seq < this.seq) return; // a late chunk of an utterance already replaced
    if (seq > this.seq) this.newSequence(seq);
    this.lastChunkAt = performance.now();
    let buffer;
    try {
      buffer = base64ToBuffer(message.data);
    } catch {
      return;
    }
    const context = this._ensureContext();
    const generation = this._generation;
    this._pending += 1;
    this._decoding = this._decoding
      .then(() => context.decodeAudioData(buffer))
      .then((audio) => {
        if (generation !== this._generation) return;
        this._schedule(context, audio, generation);
      })
      .catch((error) => console.warn("audio chunk not playable:", error))
      .finally(() => {
        if (generation === this._generation) this._pending = Math.max(0, this._pending - 1);
      });
  }

  done(seq) {
    // Nothing to cut: queued chunks play out; ``playing`` turns false when the last ends.
    if (typeof seq === "number" && seq > this.seq) this.newSequence(seq);
  }

  _schedule(context, audio) {
    const source = context.createBufferSource();
    source.buffer = audio;
    source.connect(this._analyser);
    const start = Math.max(context.currentTime + 0.02, this._nextStart);
    source.start(start);
    this._nextStart = start + audio.duration;
    this._sources.add(source);
    this.chunksPlayed += 1;
    source.addEventListener("ended", () => this._sources.delete(source));
  }

  /** Loudness of what plays right now, 0..1 (0 when silent). */
  amplitude() {
    if (!this._analyser || this._sources.size === 0) return 0;
    const samples = this._samples;
    this._analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
    return Math.min(1, Math.sqrt(sum / samples.length) * RMS_GAIN);
  }
}
