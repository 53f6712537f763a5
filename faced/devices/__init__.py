"""Devices: cameras (faced.devices.camera), the speaker (faced.devices.audio: sinks;
faced.devices.speaker: playback; faced.devices.wav, faced.devices.tts), displays.

Owner: each module names its own; hardware libraries are imported lazily inside them.
"""
