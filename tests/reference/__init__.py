"""MediaPipe as the reference faced's face pipeline is measured against (test-only).

Owner: tests (reference side of the face pipeline). Nothing under ``faced/`` may import this
package or ``mediapipe``: it is a test dependency only.
"""
