#!/usr/bin/env python3
"""Grow-only counter: each node counts its own adds and gossips its map of counts to every
other node every 0.2 s; maps merge by maximum. With --bug they merge by adding, which
counts the same adds again and again."""
import sys
from maelstrom_node import Node

bug = "--bug" in sys.argv[1:]
node = Node()
counts = {}


def add(msg):
    with node.lock:
        counts[node.id] = counts.get(node.id, 0) + msg["body"]["delta"]
    node.reply(msg, {"type": "add_ok"})


def read(msg):
    with node.lock:
        total = sum(counts.values())
    node.reply(msg, {"type": "read_ok", "value": total})


def merge(msg):
    with node.lock:
        for n, c in msg["body"]["counts"].items():
            if n == node.id:
                continue
            counts[n] = counts.get(n, 0) + c if bug else max(counts.get(n, 0), c)


def tick():
    if node.id is None:
        return
    with node.lock:
        mine = dict(counts)
    for n in node.ids:
        if n != node.id:
            node.send(n, {"type": "counts", "counts": mine})


node.on("add", add)
node.on("read", read)
node.on("counts", merge)
node.every(0.2, tick)
node.run()
