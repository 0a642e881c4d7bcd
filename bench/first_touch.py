"""How fast this machine writes into memory it has not used yet, against memory it has: the
floor under every byte a build writes into new files (each needs fresh page-cache memory).
Prints one JSON object: MB/s of the first and of a second write over the same region, for
`--rounds` regions of `--mb` MB in a row (each mapped, written twice, unmapped).

    python3 bench/first_touch.py [--mb 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import time

CHUNK = 1 << 20


def write_all(region: mmap.mmap, chunk: bytes) -> float:
    started = time.perf_counter()
    for offset in range(0, len(region), CHUNK):
        region[offset:offset + CHUNK] = chunk
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chunk = os.urandom(CHUNK)
    rounds = []
    for _ in range(args.rounds):
        region = mmap.mmap(-1, args.mb * CHUNK)
        first, second = write_all(region, chunk), write_all(region, chunk)
        region.close()
        rounds.append({"first_mb_s": round(args.mb / first), "again_mb_s": round(args.mb / second)})
    print(json.dumps({"mb": args.mb, "rounds": rounds}))


if __name__ == "__main__":
    main()
