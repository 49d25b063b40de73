#!/usr/bin/env python3
"""A key-value node over sunder's lin-kv service.

Correct: every read, write and cas is forwarded to lin-kv and its answer passed back.
With --bug local-reads: writes and cas still go through lin-kv, but each node then tells
its peers the new value and serves reads from its own copy, which is stale whenever an
update has not reached it (always, across a partition).
"""
import sys
from maelstrom_node import Node

local_reads = "local-reads" in sys.argv[1:]
node = Node()
cache = {}


def forward(msg):
    body = dict(msg["body"])
    body.pop("msg_id", None)
    kind = body["type"]

    def answer(reply, msg=msg, body=body, kind=kind):
        out = dict(reply["body"])
        out.pop("msg_id", None)
        if local_reads and out["type"] in ("write_ok", "cas_ok"):
            value = body["value"] if kind == "write" else body["to"]
            with node.lock:
                cache[body["key"]] = value
            for n in node.ids:
                if n != node.id:
                    node.send(n, {"type": "update", "key": body["key"], "value": value})
        node.reply(msg, out)

    node.rpc("lin-kv", body, answer)


def read(msg):
    if not local_reads:
        return forward(msg)
    key = msg["body"]["key"]
    with node.lock:
        present = key in cache
        value = cache.get(key)
    if present:
        node.reply(msg, {"type": "read_ok", "value": value})
    else:
        node.reply(msg, {"type": "error", "code": 20, "text": "not here"})


def update(msg):
    with node.lock:
        cache[msg["body"]["key"]] = msg["body"]["value"]


node.on("read", read)
node.on("write", forward)
node.on("cas", forward)
node.on("update", update)
node.run()
