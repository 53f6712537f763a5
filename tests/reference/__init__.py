"""MediaPipe as the reference faced's face pipeline is measured against (test-only).

Nothing under ``faced/`` may import this
package or ``mediapipe``: it is a test dependency only.
"""
