#!/usr/bin/env python3
"""Broken on purpose: reads init and never answers it."""
import sys

print("waiting forever", file=sys.stderr, flush=True)
for line in sys.stdin:
    pass
