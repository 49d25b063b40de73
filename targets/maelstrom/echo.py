#!/usr/bin/env python3
"""Echo. With --bug, every fifth echo comes back changed."""
import sys
from maelstrom_node import Node

node = Node()
bug = "--bug" in sys.argv[1:]
count = [0]


def echo(msg):
    count[0] += 1
    text = msg["body"]["echo"]
    if bug and count[0] % 5 == 0:
        text = str(text) + "?"
    node.reply(msg, {"type": "echo_ok", "echo": text})


node.on("echo", echo)
node.run()
