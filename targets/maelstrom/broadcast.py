#!/usr/bin/env python3
"""Broadcast with gossip to the topology's neighbours.

--mode retry (default): every 0.3 s, send each neighbour the messages it has not
acknowledged (survives partitions). --mode once: send each new message once (lost
under partitions). --persist: append each message to $SUNDER_DATA_DIR/messages and fsync
before acknowledging it, and read the file back at start (survives kills).
"""
import os
import sys
from maelstrom_node import Node

args = sys.argv[1:]
mode = args[args.index("--mode") + 1] if "--mode" in args else "retry"
persist = "--persist" in args
node = Node()
messages = set()
neighbours = []
acked = {}  # neighbour -> messages it confirmed
path = os.path.join(os.environ.get("SUNDER_DATA_DIR", "."), "messages")
log_file = [None]


def load():
    if persist:
        if os.path.exists(path):
            with open(path) as f:
                # A line without its newline was being written when the node died: it
                # was never fsynced or acknowledged.
                for line in f.read().split("\n")[:-1]:
                    if line:
                        messages.add(int(line))
        log_file[0] = open(path, "a")


def store(values):
    if persist:
        f = log_file[0]
        for v in values:
            f.write("%d\n" % v)
        f.flush()
        os.fsync(f.fileno())


def add(values):
    with node.lock:
        new = [v for v in values if v not in messages]
        store(new)
        messages.update(new)
        return new


def topology(msg):
    with node.lock:
        neighbours[:] = msg["body"]["topology"].get(node.id, [])
        for n in neighbours:
            acked.setdefault(n, set())
    node.reply(msg, {"type": "topology_ok"})


def send_to(n, values):
    def done(reply, n=n, values=values):
        with node.lock:
            acked.setdefault(n, set()).update(values)

    node.rpc(n, {"type": "gossip", "messages": sorted(values)}, done)


def broadcast(msg):
    v = msg["body"]["message"]
    new = add([v])
    node.reply(msg, {"type": "broadcast_ok"})
    if mode == "once" and new:
        for n in list(neighbours):
            send_to(n, new)


def gossip(msg):
    new = add(msg["body"]["messages"])
    node.reply(msg, {"type": "gossip_ok"})
    if mode == "once" and new:
        for n in list(neighbours):
            if n != msg["src"]:
                send_to(n, new)


def read(msg):
    with node.lock:
        values = sorted(messages)
    node.reply(msg, {"type": "read_ok", "messages": values})


def tick():
    if mode != "retry" or node.id is None:
        return
    with node.lock:
        pending = {n: messages - acked.get(n, set()) for n in neighbours}
    for n, values in pending.items():
        if values:
            send_to(n, values)


node.on_init(load)
node.on("topology", topology)
node.on("broadcast", broadcast)
node.on("gossip", gossip)
node.on("read", read)
node.every(0.3, tick)
node.run()
