#!/usr/bin/env python3
"""Unique ids: node id and a counter. With --bug the node id is left out, so nodes collide."""
import sys
from maelstrom_node import Node

node = Node()
bug = "--bug" in sys.argv[1:]
count = [0]


def generate(msg):
    count[0] += 1
    ident = count[0] if bug else "%s-%d" % (node.id, count[0])
    node.reply(msg, {"type": "generate_ok", "id": ident})


node.on("generate", generate)
node.run()
