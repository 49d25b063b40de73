#!/usr/bin/env python3
"""Broken on purpose: exits before reading anything."""
import sys

print("fatal: no configuration file, giving up", file=sys.stderr, flush=True)
sys.exit(7)
