"""The Python client of a faced daemon, for agents on the LAN (``faced ctl``, ``faced mcp``).

::

    from faced.client import FaceClient, FacedError

    async with FaceClient("http://box.local:9999", api_key=KEY) as face:
        await face.set_state(state="thinking", emotion="happy")
        async for event in face.person_events():
            ...

Owns nothing itself: ``FaceClient`` is in faced.client.face_client, ``AgentSocket`` in
faced.client.agent, ``FacedError`` and the decoding in faced.client.wire. Why a package:
the names an agent imports stay here while the parts stay small.
"""

from faced.client.agent import AgentSocket
from faced.client.face_client import FaceClient
from faced.client.wire import FacedError, ViewerMessage

__all__ = ["AgentSocket", "FaceClient", "FacedError", "ViewerMessage"]
