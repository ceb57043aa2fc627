"""moto's randomness, made repeatable: the same journal always rebuilds the same ids."""
from __future__ import annotations

import zlib


def apply() -> None:
    """Seed moto's generator by name when a region backend is first built.

    moto builds backends lazily (EC2's default VPC is made on first touch),
    maybe during a read that is not journaled; seeding by name makes the ids
    the same whenever that first touch happens.
    """
    from moto.core import base_backend
    from moto.moto_api._internal import mock_random

    original = base_backend.AccountSpecificBackend.__getitem__

    def getitem(self, region_name):
        if region_name in self.keys() or (region_name == "global" and "aws" in self.keys()):
            return original(self, region_name)
        state = mock_random.getstate()
        mock_random.seed(zlib.crc32(f"{self.backend.__name__}/{self.account_id}/{region_name}".encode()))
        try:
            return original(self, region_name)
        finally:
            mock_random.setstate(state)

    base_backend.AccountSpecificBackend.__getitem__ = getitem
