"""The face pipeline: verified models, an inference port, detection, landmarks, blendshapes,
head pose, gaze, tracking and smoothing; and the build of derived models.

Owns nothing itself; each module says what it owns.
Does not own frames (faced.devices.camera) or what is done with results (faced.live,
faced.api).
Why: MediaPipe Face Landmarker's results without MediaPipe: pinned models, small, on a Pi.
"""
