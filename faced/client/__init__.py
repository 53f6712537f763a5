"""The Python client of a faced daemon, for agents on the LAN (``faced ctl``, ``faced mcp``).

::

    from faced.client import FaceClient, FacedError

    async with FaceClient("http://box.local:9999", api_key=KEY) as face:
        await face.set_state(state="thinking", emotion="happy")
        async for event in face.person_events():
            ...

    boxes = await discover(timeout_s=3)   # the boxes on the LAN (mDNS; extra ``mdns``)

Owns nothing itself: ``FaceClient`` is in faced.client.face_client, ``AgentSocket`` in
faced.client.agent, ``FacedError`` and the decoding in faced.client.wire, ``discover()`` in
faced.client.discovery. Why a package:
the names an agent imports stay here while the parts stay small.
"""

from faced.client.agent import AgentSocket
from faced.client.discovery import discover
from faced.client.face_client import FaceClient
from faced.client.wire import FacedError, ViewerMessage
from faced.schemas.discovery import Box

__all__ = ["AgentSocket", "Box", "FaceClient", "FacedError", "ViewerMessage", "discover"]
