#!/usr/bin/env python3
"""Kafka-style logs: send, poll, commit_offsets, list_committed_offsets.

Correct: the logs live in sunder's lin-kv service, one list of messages per key under
"log-KEY", appended by cas (read the list, cas it to the list plus the message, again on
error 22); a message's offset is its place in the list. Committed offsets are kept under
"commit-KEY" by cas, never lowered. Nothing is kept in the node.

With --bug: each node keeps its own logs and gives a message the next offset of its own
copy, then tells its peers once; two nodes that allocate at the same time (always, across
a partition) put two messages at one offset.
"""
import sys
from maelstrom_node import Node

bug = "--bug" in sys.argv[1:]
node = Node()
logs = {}  # buggy mode: key -> {offset: msg}
commits = {}  # buggy mode: key -> committed offset


def kv(body, callback):
    node.rpc("lin-kv", body, callback)


def append(key, msg, done):
    """Appends msg to the key's list in lin-kv; calls done(offset)."""
    def got(reply):
        b = reply["body"]
        if b["type"] == "read_ok":
            old = b["value"]
        elif b.get("code") == 20:
            old = []
        else:
            return append(key, msg, done)
        cas = {"type": "cas", "key": "log-" + key, "from": old, "to": old + [msg]}
        if not old:
            cas["create_if_not_exists"] = True

        def after(reply):
            if reply["body"]["type"] == "cas_ok":
                done(len(old))
            else:
                append(key, msg, done)

        kv(cas, after)

    kv({"type": "read", "key": "log-" + key}, got)


def read_all(names, done):
    """Reads each lin-kv key in names; calls done({name: value or None})."""
    out = {}
    if not names:
        return done(out)

    for name in names:
        def got(reply, name=name):
            b = reply["body"]
            out[name] = b["value"] if b["type"] == "read_ok" else None
            if len(out) == len(names):
                done(out)

        kv({"type": "read", "key": name}, got)


def send(msg):
    key, m = msg["body"]["key"], msg["body"]["msg"]
    if bug:
        with node.lock:
            log = logs.setdefault(key, {})
            offset = max(log) + 1 if log else 0
            log[offset] = m
        for peer in node.ids:
            if peer != node.id:
                node.send(peer, {"type": "replicate", "key": key, "offset": offset, "msg": m})
        return node.reply(msg, {"type": "send_ok", "offset": offset})
    append(key, m, lambda offset: node.reply(msg, {"type": "send_ok", "offset": offset}))


def replicate(msg):
    b = msg["body"]
    with node.lock:
        logs.setdefault(b["key"], {}).setdefault(b["offset"], b["msg"])


def poll(msg):
    offsets = msg["body"]["offsets"]
    if bug:
        with node.lock:
            out = {k: [[o, m] for o, m in sorted(logs.get(k, {}).items()) if o >= start]
                   for k, start in offsets.items()}
        return node.reply(msg, {"type": "poll_ok", "msgs": {k: v for k, v in out.items() if v}})

    def done(values):
        out = {}
        for k, start in offsets.items():
            log = values["log-" + k] or []
            if start < len(log):
                out[k] = [[o, log[o]] for o in range(start, len(log))]
        node.reply(msg, {"type": "poll_ok", "msgs": out})

    read_all(["log-" + k for k in offsets], done)


def raise_commit(key, offset, done):
    def got(reply):
        b = reply["body"]
        cur = b["value"] if b["type"] == "read_ok" else None
        if cur is not None and cur >= offset:
            return done()
        cas = {"type": "cas", "key": "commit-" + key, "from": cur, "to": offset,
               "create_if_not_exists": cur is None}

        def after(reply):
            if reply["body"]["type"] == "cas_ok":
                done()
            else:
                raise_commit(key, offset, done)

        kv(cas, after)

    kv({"type": "read", "key": "commit-" + key}, got)


def commit_offsets(msg):
    offsets = msg["body"]["offsets"]
    if bug:
        with node.lock:
            for k, o in offsets.items():
                commits[k] = max(commits.get(k, o), o)
        return node.reply(msg, {"type": "commit_offsets_ok"})
    left = [len(offsets)]
    if not offsets:
        return node.reply(msg, {"type": "commit_offsets_ok"})

    def one():
        left[0] -= 1
        if left[0] == 0:
            node.reply(msg, {"type": "commit_offsets_ok"})

    for k, o in offsets.items():
        raise_commit(k, o, one)


def list_committed_offsets(msg):
    keys = msg["body"]["keys"]
    if bug:
        with node.lock:
            out = {k: commits[k] for k in keys if k in commits}
        return node.reply(msg, {"type": "list_committed_offsets_ok", "offsets": out})

    def done(values):
        out = {k: values["commit-" + k] for k in keys if values["commit-" + k] is not None}
        node.reply(msg, {"type": "list_committed_offsets_ok", "offsets": out})

    read_all(["commit-" + k for k in keys], done)


node.on("send", send)
node.on("replicate", replicate)
node.on("poll", poll)
node.on("commit_offsets", commit_offsets)
node.on("list_committed_offsets", list_committed_offsets)
node.run()
