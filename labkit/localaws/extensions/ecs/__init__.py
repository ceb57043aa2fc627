"""ECS tasks and services that really run (see ``tasks.py``)."""
from .tasks import EcsRuntime

EXTENSION = EcsRuntime
