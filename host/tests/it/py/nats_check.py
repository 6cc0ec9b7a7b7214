"""Reads a JetStream stream with a nats-py pull consumer and reports what it holds.

Fetches until --expect messages (or --timeout s), then keeps fetching 1 s more to catch
duplicates; acks each. With --republish K, publishes the first K messages again with
their own Nats-Msg-Id header (a forced resend) and counts the acks marked duplicate.
Prints one JSON object on the last line of stdout.
"""
import argparse
import asyncio
import json
import time

import nats
from nats.errors import TimeoutError as NatsTimeout


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--filter", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--republish", type=int, default=0)
    args = ap.parse_args()
    nc = await nats.connect(args.url)
    js = nc.jetstream()
    sub = await js.pull_subscribe(args.filter, durable="tapio-test", stream=args.stream)
    got = []
    deadline = time.time() + args.timeout
    extra_until = None
    while time.time() < deadline:
        if len(got) >= args.expect and extra_until is None:
            extra_until = time.time() + 1.0
        if extra_until is not None and time.time() >= extra_until:
            break
        try:
            msgs = await sub.fetch(batch=500, timeout=0.5)
        except (NatsTimeout, asyncio.TimeoutError):
            # nats-py raises its own TimeoutError from some paths and the bare
            # asyncio one from others (_fetch_n after a server restart).
            continue
        for m in msgs:
            body = json.loads(m.data)
            got.append({"id": body["id"], "subject": m.subject,
                        "msg_id": (m.headers or {}).get("Nats-Msg-Id"),
                        "type": body["type"], "source": body["source"]})
            await m.ack()
    dup = 0
    for g in got[: args.republish]:
        ack = await js.publish(g["subject"], b"{}", headers={"Nats-Msg-Id": g["msg_id"]})
        dup += 1 if ack.duplicate else 0
    info = await js.stream_info(args.stream)
    print(json.dumps({
        "messages": got,
        "republished_duplicates": dup,
        "stream_messages": info.state.messages,
        "stream_subjects": list(info.config.subjects),
        "duplicate_window_s": info.config.duplicate_window,
    }))
    await nc.close()


asyncio.run(main())
