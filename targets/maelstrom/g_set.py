#!/usr/bin/env python3
"""Grow-only set: add {element}, read -> {value: [...]}.

Correct: every 0.2 s each node sends every peer the elements that peer has not yet
acknowledged, until it does (survives partitions). With --bug: each new element is sent
to every peer once, fire and forget, so what a partition drops is never seen there.
"""
import sys
from maelstrom_node import Node

bug = "--bug" in sys.argv[1:]
node = Node()
elements = set()
acked = {}  # peer -> elements it confirmed


def peers():
    return [n for n in node.ids if n != node.id]


def add(msg):
    e = msg["body"]["element"]
    with node.lock:
        new = e not in elements
        elements.add(e)
    node.reply(msg, {"type": "add_ok"})
    if bug and new:
        for n in peers():
            node.send(n, {"type": "gossip", "elements": [e]})


def read(msg):
    with node.lock:
        values = sorted(elements)
    node.reply(msg, {"type": "read_ok", "value": values})


def gossip(msg):
    with node.lock:
        elements.update(msg["body"]["elements"])
    if "msg_id" in msg["body"]:
        node.reply(msg, {"type": "gossip_ok"})


def tick():
    if bug or node.id is None:
        return
    with node.lock:
        pending = {n: elements - acked.get(n, set()) for n in peers()}
    for n, values in pending.items():
        if values:
            def done(reply, n=n, values=values):
                with node.lock:
                    acked.setdefault(n, set()).update(values)

            node.rpc(n, {"type": "gossip", "elements": sorted(values)}, done)


node.on("add", add)
node.on("read", read)
node.on("gossip", gossip)
node.every(0.2, tick)
node.run()
