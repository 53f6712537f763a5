"""Devices: cameras (faced.devices.camera), the speaker (faced.devices.audio: sinks;
faced.devices.speaker: playback; faced.devices.wav, faced.devices.tts), displays
(faced.devices.display, faced.devices.wayland), and their shared retry rule
(faced.devices.retry).

Owns nothing itself; each module says what it owns. Hardware libraries are imported
lazily inside them.
Does not own when a device is used (faced.live, faced.display_policy, faced.voice).
Why: hardware blocks, fails and vanishes; here it does so behind small ports.
"""
