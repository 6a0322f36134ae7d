#!/usr/bin/env python3
"""Print Ordo's order events straight from JetStream, with their headers.

An ordered consumer (ephemeral, in stream order, flow-controlled; nothing to clean up)
reads the stream ORDO_ORDER from its first message to its current end, then stops.
Each event prints as one JSON line: the stream sequence, the subject, the Ordo headers
(Nats-Msg-Id, Ordo-Sequence, Ordo-Event-Type, Ordo-Event-Version, Ordo-Correlation-Id,
Ordo-Causation-Id, Ordo-Recorded-At, traceparent...) and the payload, which is the event's
JSON as described by the schemas under schemas/events/.

    pip install 'nats-py>=2.6'
    python3 examples/replay_nats.py                      # every order event
    python3 examples/replay_nats.py --aggregate-id <order uuid>
    python3 examples/replay_nats.py --server nats://10.0.0.5:4222 --namespace ordo

`ordo replay --source jetstream --stream ORDO_ORDER` writes the same events as JSON Lines
or CSV; this script shows how a Python consumer reads them itself.
"""

import argparse
import asyncio
import json

import nats
from nats.errors import TimeoutError as NatsTimeout


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="nats://127.0.0.1:4222")
    parser.add_argument("--namespace", default="ordo", help="ORDO_NATS_NAMESPACE")
    parser.add_argument("--aggregate-id", help="only this order's events")
    args = parser.parse_args()

    stream = f"{args.namespace.upper()}_ORDER"
    subject = f"{args.namespace}.events.order.{args.aggregate_id or '*'}.*"

    nc = await nats.connect(args.server)
    try:
        js = nc.jetstream()
        # How many messages match now: the replay stops once it has seen them all.
        info = await js.stream_info(stream)
        if info.state.messages == 0:
            return
        sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=2)
                except NatsTimeout:
                    break  # nothing more arrived: the filter matched fewer messages
                meta = msg.metadata  # stream and consumer sequences, pending count
                print(json.dumps({
                    "stream_sequence": meta.sequence.stream,
                    "subject": msg.subject,
                    "headers": dict(msg.headers or {}),
                    "payload": json.loads(msg.data),
                }))
                if meta.num_pending == 0:
                    break  # the end of the stream
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
