"""The face pipeline: verified models, an inference port, detection, landmarks, blendshapes,
head pose, gaze, tracking and smoothing (owner: the face-pipeline issue)."""
