"""The face-state model (merge, clamp, history, idle/sleep timers, audio sequence): pure.

Owns: the Open Face protocol's rules — how updates and time change the face
(faced.face.model) and how a tracked person becomes face-state updates (faced.face.follow).
Does not own: the event loop, the hub or any I/O (faced.openface and faced.gaze_follow run
these models in the daemon). Why apart: pure code with injectable clocks is tested without
a daemon, and the protocol's rules stay the same whatever carries them.
"""

from faced.face.model import FaceModel, InvalidUpdate, message_of

__all__ = ["FaceModel", "InvalidUpdate", "message_of"]
