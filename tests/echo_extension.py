"""A toy runtime for the extension-protocol test: one module, registered by name, no app edits."""
from __future__ import annotations

import json

from labkit.localaws.extensions import Claim, Extension
from labkit.localaws.http import Response


class Echo(Extension):
    name = "echo"
    services = ("ssm",)

    def __init__(self, host):
        super().__init__(host)
        self.heard: list[str] = []
        self.kept: list[str] = []  # state changed through the extension itself: journaled and replayed

    def claims(self, request):
        if request.path == "/_echo/keep":
            return Claim.WRITE
        return Claim.DATA if request.path.startswith("/_echo/") else None

    def handle(self, request):
        if request.path == "/_echo/keep":
            self.kept.append(request.body.decode())
        return Response(200, json.dumps({"heard": self.heard, "kept": self.kept, "path": request.path}).encode(),
                        {"Content-Type": "application/json"})

    def written(self, service, request):
        self.heard.append(f"{service}:{request.action}")

    def reset(self):
        self.heard.append("reset")
        self.kept.clear()

    def restored(self):
        self.heard.append("restored")

    def checkpoint_state(self):
        return list(self.kept)

    def load_checkpoint(self, state):
        self.kept[:] = state


EXTENSION = Echo
