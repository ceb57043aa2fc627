"""Measure labkit's image build and push of the catalog service, beside a floor measured in the same run.

Runs against its own local AWS (a temporary state folder and a free port) and reports the median of
N runs for:

- the floor: copying the same files the image holds (the build context's files read and written);
- ``images.build``: the Dockerfile into an OCI image (layers tarred and gzipped, config, manifest);
- ``images.push``, first push: every blob uploaded over the OCI distribution API, then the manifest;
- ``images.push`` again: the blobs are found (HEAD) and only the manifest is sent.

Usage: ``python benchmarks/images.py [--runs N]``.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from isolated import use_own_local_aws  # benchmarks/ is the script's folder


def _median_ms(runs: int, work) -> float:
    times = []
    for number in range(runs):
        begun = time.perf_counter()
        work(number)
        times.append((time.perf_counter() - begun) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    home = use_own_local_aws("images")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from labkit import images, localaws
    from labkit.assets import ASSETS
    from labkit.target import Target

    context = ASSETS / "catalog-service"
    files = [context / name for name in ("requirements.txt", "app.py", "items.json")]
    scratch = Path(tempfile.mkdtemp(prefix="labs-images-copy-"))

    def copy(number):
        folder = scratch / str(number)
        folder.mkdir()
        for path in files:
            shutil.copyfile(path, folder / path.name)

    localaws.up(quiet=True)
    try:
        t = Target("local", prefix="bench", region="us-east-1")
        ecr = t.client("ecr")
        image = images.build(context)
        floor = _median_ms(args.runs, copy)
        build = _median_ms(args.runs, lambda n: images.build(context))
        uris = [ecr.create_repository(repositoryName=f"bench-catalog-{n}")["repository"]["repositoryUri"]
                for n in range(args.runs)]
        # The store is shared by digest, so a first push finds blobs an earlier one sent: empty it each time.
        first = []
        for n in range(args.runs):
            shutil.rmtree(home / "registry" / "blobs", ignore_errors=True)
            begun = time.perf_counter()
            images.push(image, uris[n], t, tag="v1", progress=None)
            first.append((time.perf_counter() - begun) * 1000)
        again = _median_ms(args.runs, lambda n: images.push(image, uris[n], t, tag="v1", progress=None))
    finally:
        localaws.down()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    size = image.size
    print(f"catalog service image: {len(image.layers)} layer(s), {image.files} file(s), {size:,} bytes, "
          f"{image.digest[:19]}")
    print(f"{'floor: copy the same files':<44} {floor:8.2f} ms")
    print(f"{'images.build':<44} {build:8.2f} ms  ({build / floor:.1f}x the floor)")
    print(f"{'images.push, blobs uploaded':<44} {statistics.median(first):8.2f} ms")
    print(f"{'images.push again, blobs already there':<44} {again:8.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
