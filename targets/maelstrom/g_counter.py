#!/usr/bin/env python3
"""Grow-only counter: each node counts its own adds and gossips its map of counts to every
other node every 0.2 s; maps merge by maximum. With --bug they merge by adding, which
counts the same adds again and again.

With --fifo the node instead sends each add at once to every other node as a delta
numbered per sender, and drops a delta numbered at or below the last one it applied from
that sender (a duplicate, were links FIFO): correct on a network that keeps each link's
order and loses nothing, wrong as soon as a later delta overtakes an earlier one."""
import sys
from maelstrom_node import Node

bug = "--bug" in sys.argv[1:]
fifo = "--fifo" in sys.argv[1:]
node = Node()
counts = {}
sent = 0
last_seq = {}


def add(msg):
    global sent
    delta = msg["body"]["delta"]
    with node.lock:
        counts[node.id] = counts.get(node.id, 0) + delta
        if fifo:
            sent += 1
            seq = sent
    if fifo:
        for n in node.ids:
            if n != node.id:
                node.send(n, {"type": "delta", "seq": seq, "delta": delta})
    node.reply(msg, {"type": "add_ok"})


def delta(msg):
    src, body = msg["src"], msg["body"]
    with node.lock:
        if body["seq"] > last_seq.get(src, 0):
            last_seq[src] = body["seq"]
            counts[src] = counts.get(src, 0) + body["delta"]


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
    if node.id is None or fifo:
        return
    with node.lock:
        mine = dict(counts)
    for n in node.ids:
        if n != node.id:
            node.send(n, {"type": "counts", "counts": mine})


node.on("add", add)
node.on("read", read)
node.on("counts", merge)
node.on("delta", delta)
node.every(0.2, tick)
node.run()
