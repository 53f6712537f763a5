"""The face-state model (merge, clamp, history, idle/sleep timers, audio sequence): pure.

Owner: the Open Face protocol (issue 3).
"""

from faced.face.model import FaceModel, InvalidUpdate, message_of

__all__ = ["FaceModel", "InvalidUpdate", "message_of"]
