"""ECS services: placeholder while the runner lands."""
from __future__ import annotations


class Scheduler:
    def __init__(self, runtime):
        self.runtime = runtime

    def keep_settings(self, region, body, created):
        pass

    def wake(self):
        pass

    def task_changed(self, run):
        pass

    def clear(self):
        pass

    def close(self):
        pass
