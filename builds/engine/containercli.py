"""`manage.py run IMAGE [CMD...]`: a container on the command line. Its output goes to this
process's stdout and stderr as it comes; then its writable layer is shown on stderr (so stdout
stays the container's own), committed if asked, and removed: it vanishes with the container."""

from __future__ import annotations

import argparse
import json
import sys

from . import container
from .limits import describe_size
from .location import data_dir
from .printable import printable
from .sandbox import Limits


def _write(stream: str, text: str) -> None:
    out = sys.stdout if stream == "stdout" else sys.stderr
    out.write(text)
    out.flush()


def run_command(args: argparse.Namespace, limits: Limits) -> int:
    from .store import Store

    store = Store(data_dir())
    image = container.find_image(store, args.image)
    cmd = list(args.cmd)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    container.container_check(image.config, cmd)  # refused before anything is made
    if args.commit:
        from .reference import parse_reference

        if "@" in args.commit:
            raise container.ContainerError(f"--commit {args.commit!r}: a name is NAME[:TAG], "
                                           "without a digest")
        parse_reference(args.commit)  # a bad name is refused before the container runs
    ran = container.run(store, image, cmd, limits=limits, on_output=_write)
    try:
        if ran.result.message:
            print(f"run: {ran.result.message}", file=sys.stderr)
        _show(ran.diff, as_json=args.json)
        if args.commit:
            new = container.commit(store, image, ran.container_id, tag=args.commit,
                                   created_by=f"manage.py run {' '.join(ran.argv)}")
            print(f"committed {args.commit} {new.digest} ({len(new.layers)} layers)", file=sys.stderr)
    finally:
        container.remove(store, ran.container_id)
    return ran.exit_code


def _show(diff: container.Diff, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(diff.to_json(), ensure_ascii=False), file=sys.stderr)
        return
    print(f"writable layer: {diff.added} added, {diff.modified} changed, {diff.deleted} deleted, "
          f"{describe_size(diff.size)} (removed with the container)", file=sys.stderr)
    marks = {"added": "A", "modified": "C", "deleted": "D"}
    for change in diff.changes:
        size = f"  {describe_size(change.size)}" if change.kind == "file" else ""
        print(f"  {marks[change.change]} /{_shown(change.path)}{size}", file=sys.stderr)
    if diff.truncated:
        print(f"  ... and {diff.total - len(diff.changes)} more", file=sys.stderr)


def _shown(path: str) -> str:
    """A path on one terminal line: a name holding a newline or an escape sequence (a container
    chooses its file names) is written with backslash escapes, as Go's %q does."""
    text = printable(path)
    if text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False)[1:-1]
