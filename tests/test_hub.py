"""The hub's fan-out: each broadcast encoded once per (encoding, fields), not once per subscriber.

A real Hub with real Subscribers (the objects the
viewer sockets and event streams drain). The observable: every subscriber of one encoding
is handed the very same bytes object — encoding per subscriber would hand each a fresh
one — whether it takes the message through its queue or through the ``write_now`` fast
path the viewer sockets use — and for latest-wins subscribers (the /ws/tracking clients),
once per (encoding, fields) group, a slow one holding one message and counting the rest.
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


# --- latest wins (the /ws/tracking clients) ----------------------------------------------


def _result(frame: int) -> dict[str, object]:
    return {"frame": frame, "face_found": True, "blendshapes": {"jawOpen": 0.5}, "head": [1, 2]}


async def test_a_slow_latest_wins_subscriber_keeps_only_the_newest_and_counts_skipped() -> None:
    hub = Hub(max_messages=1, max_bytes=1)
    slow = hub.subscribe_latest("json")
    for frame in range(1, 11):  # the reader takes nothing meanwhile
        hub.publish(_result(frame))
    assert len(slow) == 1 and slow.skipped == 9
    assert hub.slow_disconnects == 0 and not slow.closed  # slow costs nothing, ends nothing
    assert msgspec.json.decode(await slow.next() or b"")["frame"] == 10
    assert len(slow) == 0 and slow.sent == 1
    hub.publish(_result(11))
    assert msgspec.json.decode(await slow.next() or b"")["frame"] == 11
    assert slow.skipped == 9


async def test_latest_wins_is_encoded_once_per_encoding_and_fields() -> None:
    hub = Hub(max_messages=1, max_bytes=1)
    head = frozenset({"frame", "head"})
    groups = {
        ("json", None): [hub.subscribe_latest("json") for _ in range(3)],
        ("msgpack", None): [hub.subscribe_latest("msgpack") for _ in range(2)],
        ("json", head): [hub.subscribe_latest("json", fields=head) for _ in range(3)],
        ("msgpack", head): [hub.subscribe_latest("msgpack", fields=head) for _ in range(2)],
    }
    hub.publish(_result(7))
    firsts = []
    for (encoding, fields), subscribers in groups.items():
        copies = [await s.next() for s in subscribers]
        first = copies[0]
        assert first is not None
        assert all(data is first for data in copies), f"{encoding}/{fields}: encoded per client"
        decode = msgspec.msgpack.decode if encoding == "msgpack" else msgspec.json.decode
        expected = _result(7) if fields is None else {"frame": 7, "head": [1, 2]}
        assert decode(first) == expected
        firsts.append(first)
    assert len({id(data) for data in firsts}) == len(groups)


async def test_closing_the_hub_ends_latest_wins_readers() -> None:
    hub = Hub(max_messages=1, max_bytes=1)
    reader = hub.subscribe_latest("msgpack")
    hub.publish(_result(1))
    hub.close_all()
    assert await reader.next() is None
    assert reader.closed and reader.close_code == 1001 and len(hub) == 0


def test_the_rate_cap_skips_what_comes_too_soon() -> None:
    reader = Hub(max_messages=1, max_bytes=1).subscribe_latest("json", max_rate_hz=10.0)
    reader.offer(b"first", now=10.0)
    reader.offer(b"too soon", now=10.05)
    assert reader.pending == b"first" and reader.skipped == 0


def test_an_observer_that_fails_stops_no_other_reader() -> None:
    hub = Hub(max_messages=8, max_bytes=1 << 20)
    seen: list[object] = []

    def broken(message: object) -> None:
        raise RuntimeError("broken observer")

    hub.observers.append(broken)
    hub.observers.append(seen.append)
    subscriber = hub.subscribe("json")
    hub.publish(AudioSeqMessage(seq=3))
    assert seen == [AudioSeqMessage(seq=3)]
    assert len(subscriber) == 1
