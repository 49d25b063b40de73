#!/usr/bin/env python3
"""Broken on purpose: prints something that is not a Maelstrom message."""
import sys

sys.stdin.readline()
print("starting up, hello!", flush=True)
print("still not a message", file=sys.stderr, flush=True)
sys.stdin.read()
