// Built-in speech for remote viewers (?tts=1): speaks a state's ``text`` with the browser's
// speech synthesis while no audio chunks flow; real audio from the daemon always wins (it
// cancels speech). The mouth follows word boundaries. Does not own the daemon's audio
// (audio.js).

const AUDIO_QUIET_MS = 3000; // chunks within this long mean an audio pipeline is active
const AUDIO_EXPECTED_MS = 2000; // after an audio-seq announcing audio, wait for its chunks

export class SpeechFallback {
  constructor(audio) {
    this.audio = audio;
    this.speaking = false;
    this._pulse = 0;
    this._audioExpectedAt = -Infinity;
    this._deferred = 0;
    this.spoken = 0; // utterances started (for the dashboard and tests)
    this.available = typeof speechSynthesis !== "undefined";
  }

  /** An ``audio-seq`` arrived: unless it says no audio follows, real audio is on its way. */
  sequence(message) {
    if (message.expectAudio !== false) this._audioExpectedAt = performance.now();
  }

  say(text) {
    if (!this.available || !text) return;
    const now = performance.now();
    const waited = now - this._audioExpectedAt;
    if (waited < AUDIO_EXPECTED_MS) {
      // Audio was announced: give its first chunk a moment, speak only if none came.
      clearTimeout(this._deferred);
      this._deferred = setTimeout(() => this.say(text), AUDIO_EXPECTED_MS - waited + 10);
      this._audioExpectedAt = -Infinity;
      return;
    }
    if (this.audio && (this.audio.playing || now - this.audio.lastChunkAt < AUDIO_QUIET_MS)) return;
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.addEventListener("start", () => { this.speaking = true; });
    utterance.addEventListener("boundary", () => { this._pulse = 1; });
    utterance.addEventListener("end", () => { this.speaking = false; });
    utterance.addEventListener("error", () => { this.speaking = false; });
    speechSynthesis.cancel();
    speechSynthesis.speak(utterance);
    this.spoken += 1;
  }

  cancel() {
    clearTimeout(this._deferred);
    if (this.available && this.speaking) speechSynthesis.cancel();
    this.speaking = false;
  }

  /** A mouth amplitude from word boundaries, decaying between them. */
  amplitude(dt) {
    if (!this.speaking) return 0;
    this._pulse = Math.max(0.25, this._pulse - dt * 3);
    return this._pulse * 0.8;
  }
}
