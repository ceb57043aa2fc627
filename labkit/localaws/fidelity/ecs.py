"""Stand-in until the ECS rules module is merged: the one table of valid Fargate task sizes.

cpu units (1024 = 1 vCPU) -> the memory sizes (MiB) AWS accepts with it, from the Amazon ECS
Developer Guide ("Task CPU and memory"). The merged module keeps this name and adds AWS's refusals.
"""
from __future__ import annotations

FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
