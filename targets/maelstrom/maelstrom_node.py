"""A minimal Maelstrom node runtime for sunder's test nodes (Python 3, standard library).

Messages are JSON lines on stdin/stdout; logs go to stderr. Handlers run on the main
thread; `every` runs a function periodically on a thread of its own; `lock` guards state
shared between them.
"""
import json
import sys
import threading
import time


class Node:
    def __init__(self):
        self.id = None
        self.ids = []
        self.lock = threading.RLock()
        self._out = threading.Lock()
        self._next = 0
        self._handlers = {}
        self._callbacks = {}
        self._on_init = []

    def log(self, *args):
        print(*args, file=sys.stderr, flush=True)

    def send(self, dest, body):
        line = json.dumps({"src": self.id, "dest": dest, "body": body})
        with self._out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def reply(self, req, body):
        body["in_reply_to"] = req["body"].get("msg_id")
        self.send(req["src"], body)

    def rpc(self, dest, body, callback):
        with self.lock:
            self._next += 1
            body["msg_id"] = self._next
            self._callbacks[self._next] = callback
        self.send(dest, body)

    def on(self, kind, fn):
        self._handlers[kind] = fn

    def on_init(self, fn):
        self._on_init.append(fn)

    def every(self, seconds, fn):
        def loop():
            while True:
                time.sleep(seconds)
                fn()

        threading.Thread(target=loop, daemon=True).start()

    def run(self):
        for line in sys.stdin:
            msg = json.loads(line)
            body = msg["body"]
            kind = body["type"]
            if kind == "init":
                self.id = body["node_id"]
                self.ids = body["node_ids"]
                for fn in self._on_init:
                    fn()
                self.reply(msg, {"type": "init_ok"})
                continue
            reply_to = body.get("in_reply_to")
            if reply_to is not None:
                with self.lock:
                    cb = self._callbacks.pop(reply_to, None)
                if cb is not None:
                    cb(msg)
                continue
            handler = self._handlers.get(kind)
            if handler is None:
                self.reply(msg, {"type": "error", "code": 10, "text": "unsupported " + kind})
            else:
                handler(msg)
