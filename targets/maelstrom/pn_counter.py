#!/usr/bin/env python3
"""Counter with increments and decrements: add {delta}, read -> {value}.

Correct: a P/N CRDT, per node the sum of its positive and of its negative deltas, sent
whole to every peer every 0.2 s and merged by maximum, so lost, repeated or reordered
gossip changes nothing. With --bug: each add's delta is sent to the peers and resent every
0.2 s until acknowledged, and a receiver adds every delta it gets without remembering
which it has seen, so a duplicated message or a retry whose first copy arrived (its
acknowledgement cut) counts twice.
"""
import sys
from maelstrom_node import Node

bug = "--bug" in sys.argv[1:]
node = Node()
p = {}  # node -> sum of its positive deltas
n = {}  # node -> sum of its negative deltas (as a positive number)
unacked = {}  # (peer, delta id) -> delta, the buggy mode's retries
next_id = [0]


def peers():
    return [x for x in node.ids if x != node.id]


def add(msg):
    d = msg["body"]["delta"]
    with node.lock:
        side = p if d >= 0 else n
        side[node.id] = side.get(node.id, 0) + abs(d)
        if bug:
            for peer in peers():
                next_id[0] += 1
                unacked[(peer, next_id[0])] = d
    node.reply(msg, {"type": "add_ok"})


def read(msg):
    with node.lock:
        value = sum(p.values()) - sum(n.values())
    node.reply(msg, {"type": "read_ok", "value": value})


def state(msg):
    with node.lock:
        for side, theirs in ((p, msg["body"]["p"]), (n, msg["body"]["n"])):
            for k, v in theirs.items():
                if k != node.id:
                    side[k] = max(side.get(k, 0), v)


def delta(msg):
    d = msg["body"]["delta"]
    with node.lock:
        side = p if d >= 0 else n
        side[msg["src"]] = side.get(msg["src"], 0) + abs(d)
    node.reply(msg, {"type": "delta_ok"})


def tick():
    if node.id is None:
        return
    if not bug:
        with node.lock:
            body = {"type": "state", "p": dict(p), "n": dict(n)}
        for peer in peers():
            node.send(peer, dict(body))
        return
    with node.lock:
        pending = list(unacked.items())
    for (peer, i), d in pending:
        def done(reply, key=(peer, i)):
            with node.lock:
                unacked.pop(key, None)

        node.rpc(peer, {"type": "delta", "delta": d}, done)


node.on("add", add)
node.on("read", read)
node.on("state", state)
node.on("delta", delta)
node.every(0.2, tick)
node.run()
