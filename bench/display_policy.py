"""What the display policy adds to every hub publish, beside a publish without it.

The display policy reads the hub as an observer (faced.hub.Hub.observers,
faced.display_policy.DisplayService.observe): every message the hub publishes — state
updates up to an agent's 60/s, gaze follow's 20/s, presence moves 5/s, audio chunks — costs
one call that updates the policy and checks whether its level or next step changed. Measured
here: ``Hub.publish`` of a state message and of a presence move to one JSON viewer, without
observers (the baseline) and with the display policy observing, best of several rounds, in
the same run.

    .venv/bin/python bench/display_policy.py [--messages 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from faced.config import DisplayConfig
from faced.display_policy import DisplayPolicy, DisplayService
from faced.hub import Hub
from faced.schemas.face_state import StateMessage
from faced.schemas.tracking import Position, PresenceMessage


def per_message_us(hub: Hub, message: Any, count: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        viewer = hub.subscribe("json")  # a fresh queue each round, large enough for all
        started = time.perf_counter()
        for _ in range(count):
            hub.publish(message)
        best = min(best, (time.perf_counter() - started) / count)
        hub.unsubscribe(viewer)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    night = DisplayConfig(night="23:00-07:00")
    messages = {
        "state": StateMessage(state="speaking", emotion="happy", amplitude=0.4),
        "presence moved": PresenceMessage(
            event="moved", present=True, ts=0, position=Position(x=0.1, y=-0.2)
        ),
    }
    print(f"Hub.publish to one JSON viewer, µs per message, best of {args.rounds}")
    print(f"{'message':<16} {'policy':<14} {'no observer':>12} {'with policy':>12} {'added':>8}")
    for name, message in messages.items():
        # The night window reads the local time for every level: the costlier path.
        for label, config in (("default", DisplayConfig()), ("night window", night)):
            bare = Hub(max_messages=1 << 20, max_bytes=1 << 30)
            observed = Hub(max_messages=1 << 20, max_bytes=1 << 30)
            service = DisplayService(config, DisplayPolicy.from_config(config))
            observed.observers.append(service.observe)
            base = per_message_us(bare, message, args.messages, args.rounds)
            policy = per_message_us(observed, message, args.messages, args.rounds)
            print(f"{name:<16} {label:<14} {base:>12.2f} {policy:>12.2f} {policy - base:>+8.2f}")


if __name__ == "__main__":
    main()
