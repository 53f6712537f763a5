"""faced — the face of a LAN AI agent, as a box.

An edge appliance daemon: it sees (camera → face pipeline), shows (kiosk face),
speaks (speaker with lip sync) and serves (REST/WebSocket API to LAN agents).
Each module's docstring says what it owns; faced.app puts the components together.
"""

__version__ = "0.1.0"
