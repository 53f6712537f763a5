"""The hub's fan-out: each broadcast encoded once per encoding, not once per subscriber.

Owner: the Open Face protocol (issue 3). A real Hub with real Subscribers (the objects the
viewer sockets and event streams drain). The observable: every subscriber of one encoding
is handed the very same bytes object — encoding per subscriber would hand each a fresh
one — whether it takes the message through its queue or through the ``write_now`` fast
path the viewer sockets use.
"""

from __future__ import annotations

import msgspec

from faced.face import FaceModel
from faced.hub import ENCODINGS, Hub, Subscriber
from faced.schemas.face_state import AudioSeqMessage


def _fast_path(subscriber: Subscriber, taken: list[bytes]) -> None:
    """Stand in for a connection that writes at once (the socket, not our code)."""

    def write_now(data: bytes) -> bool:
        taken.append(data)
        return True

    subscriber.write_now = write_now


async def test_publish_hands_every_subscriber_of_an_encoding_the_same_bytes() -> None:
    hub = Hub(max_messages=8, max_bytes=1 << 20)
    queued = {encoding: [hub.subscribe(encoding) for _ in range(3)] for encoding in ENCODINGS}
    written: dict[str, list[bytes]] = {encoding: [] for encoding in ENCODINGS}
    for encoding in ENCODINGS:
        for _ in range(2):
            _fast_path(hub.subscribe(encoding), written[encoding])
    messages = [FaceModel().snapshot(), AudioSeqMessage(seq=7)]
    for message in messages:
        hub.publish(message)
        expected = msgspec.to_builtins(message)
        received = {
            encoding: [await s.next() for s in queued[encoding]] + written[encoding]
            for encoding in ENCODINGS
        }
        for encoding, copies in received.items():
            assert len(copies) == 5
            first = copies[0]
            assert first is not None
            assert all(data is first for data in copies), f"{encoding}: encoded per subscriber"
            written[encoding].clear()
        json_data = received["json"][0]
        assert json_data is not None and msgspec.json.decode(json_data) == expected
        assert received["sse"][0] == b"data: " + json_data + b"\n\n"
        msgpack_data = received["msgpack"][0]
        assert msgpack_data is not None and msgspec.msgpack.decode(msgpack_data) == expected


async def test_messages_for_one_subscriber_stay_its_own() -> None:
    """A pong or an error goes to the one subscriber it answers, nobody else."""
    hub = Hub(max_messages=8, max_bytes=1 << 20)
    asker, other = hub.subscribe("json"), hub.subscribe("json")
    hub.send(asker, AudioSeqMessage(seq=1))
    hub.publish(AudioSeqMessage(seq=2))
    assert msgspec.json.decode(await asker.next() or b"")["seq"] == 1
    assert msgspec.json.decode(await asker.next() or b"")["seq"] == 2
    assert msgspec.json.decode(await other.next() or b"")["seq"] == 2
    assert len(other) == 0
