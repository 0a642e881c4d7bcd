"""The engine's command line, reached through `manage.py build` and `manage.py images` without
starting Django (a fully cached rebuild must cost less than Django's start-up alone).

    build CONTEXT [-f DOCKERFILE] [-t NAME[:TAG]] [--target STAGE] [--build-arg K=V]...
          [--no-cache] [--progress plain|json] [--dry-run]
          [--timeout S] [--memory MIB] [--disk MIB] [--files N] [--pids N] [--output-limit MIB]
          [--max-dockerfile KIB] [--max-steps N] [--max-word KIB]
    run [--commit NAME[:TAG]] [--json] [LIMIT FLAGS] IMAGE [CMD...]
    images import TARBALL NAME[:TAG]
    images export NAME[:TAG] FILE [--format docker|oci]
    images pull NAME[:TAG|@DIGEST] [--platform OS/ARCH] [--progress plain|json]
    images push NAME[:TAG] [DEST] [--gzip] [--progress plain|json]
    images seed
    images ls
    images df [--json]

Exit codes: 0 built, 1 a step failed, 2 invalid input; `run` exits with the container's code (137
when a limit stopped it), or 2 for invalid input. `--dry-run` builds nothing: it prints what
a build would serve from the cache and what it would rebuild, and why (0, or 2 for invalid input).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import EngineError, InputError
from .location import data_dir

_build_parser: argparse.ArgumentParser | None = None
# Told of each build before it starts, when the warm engine serves it (it has the next build's
# process read the same context ahead: context/watched.py).
on_build: Callable[[Any], None] | None = None
tidy_when_done = True


def prepare() -> None:
    """Make ahead what every build takes time to make: the modules it imports late and its
    argument parser, used as it will be. The warm engine calls this once, before it forks the
    processes its builds run in."""
    from . import limits, tidy  # noqa: F401

    _parser(["build"]).parse_args(["build", "."])


def _parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser for `argv`. A `build` gets no `images` actions: every parser argparse makes
    asks gettext for its messages, which looks for catalogues on disk each time, and a cached
    rebuild should not pay for eight of them. The build's parser is made once per process."""
    global _build_parser
    if argv[:1] == ["build"] and _build_parser is not None:
        return _build_parser
    parser = argparse.ArgumentParser(prog="manage.py", description="Dockerfile Studio's layer engine")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build a Dockerfile")
    build.add_argument("context", type=Path, help="the build context directory")
    build.add_argument(
        "-f", "--file", dest="dockerfile", type=Path, help="the Dockerfile (default CONTEXT/Dockerfile)"
    )
    build.add_argument("-t", "--tag", help="tag the image NAME[:TAG]")
    build.add_argument("--target", help="build up to this stage")
    build.add_argument("--build-arg", action="append", default=[], metavar="K=V", help="set a build argument")
    build.add_argument("--no-cache", action="store_true", help="rebuild every step")
    build.add_argument(
        "--cache-scope", default="", metavar="NAME",
        help="use (and fill) the cache index and cache mounts named NAME; default: the store's own",
    )
    build.add_argument("--progress", choices=("plain", "json"), default="plain")
    build.add_argument(
        "--dry-run",
        action="store_true",
        help="build nothing: predict each step (cached, rebuilt and why, or skipped); "
        "with --progress json, one JSON document",
    )

    _limit_flags(build)

    images = commands.add_parser("images", help="manage images in the store")
    if argv[:1] == ["build"]:
        _build_parser = parser
        return parser
    _run_parser(commands)
    actions = images.add_subparsers(dest="action", required=True)
    imp = actions.add_parser("import", help="import a rootfs tarball, docker save or OCI archive")
    imp.add_argument("tarball", type=Path)
    imp.add_argument("name")
    exp = actions.add_parser("export", help="write an image as an archive `docker load` takes")
    exp.add_argument("name")
    exp.add_argument("file", type=Path)
    exp.add_argument("--format", choices=("docker", "oci"), default="docker")
    seed = actions.add_parser("seed", help="make the base images this machine can: busybox from "
                              "busybox-static")
    seed.add_argument("--debian", action="store_true",
                      help="also debian:bookworm, with debootstrap (needs root and a Debian mirror; minutes)")
    pull = actions.add_parser("pull", help="pull an image from a registry (Docker's names: busybox, "
                              "host:5000/x:tag, x@sha256:...)")
    pull.add_argument("name")
    pull.add_argument("--progress", choices=("plain", "json"), default="plain")
    pull.add_argument("--platform", help="OS/ARCH[/VARIANT] to take from a multi-platform image "
                      "(default: STUDIO_PLATFORM, else linux/amd64)")
    push = actions.add_parser("push", help="push an image to a registry, uploading only the layers it lacks")
    push.add_argument("name")
    push.add_argument("dest", nargs="?", help="where to push it (default: NAME, which then names a registry)")
    push.add_argument("--progress", choices=("plain", "json"), default="plain")
    push.add_argument("--gzip", action="store_true",
                      help="upload missing layers gzip-compressed, as Docker does (smaller, slower)")
    actions.add_parser("ls", help="list images, with what each shares with the others")
    squash = actions.add_parser("squash", help="store a one-layer variant of an image: its merged "
                                "filesystem, whiteouts applied")
    squash.add_argument("name", help="the image to squash")
    squash.add_argument("dest", help="the name to tag the squashed image")
    df = actions.add_parser("df", help="every layer's size, the images sharing it, and what sharing saves")
    df.add_argument("--json", action="store_true", help="print it as one JSON document")
    return parser


def _run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run", help="run a container on an image, in the RUN steps' sandbox, and show its writable layer",
        description="Options go before IMAGE; everything after it is the command, as with `docker run`.")
    run.add_argument("image", help="NAME[:TAG] or sha256:DIGEST")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD", help="replaces the image's CMD")
    run.add_argument("--commit", metavar="NAME[:TAG]",
                     help="afterwards, store the writable layer as one more layer: a new image tagged so")
    run.add_argument("--json", action="store_true", help="print the writable layer as JSON on stderr")
    _limit_flags(run)


def _limit_flags(build: argparse.ArgumentParser) -> None:
    """One flag for each STUDIO_BUILD_* limit; a flag given wins over the environment."""
    from .limits import SETTINGS

    group = build.add_argument_group(
        "limits (default: the STUDIO_BUILD_* variable, else the studio's default)")
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        unit = f" {setting.unit}" if setting.unit else ""
        group.add_argument(setting.flag, dest=f"limit_{setting.field}", metavar="N",
                           help=f"{setting.env} (default {setting.default}{unit})")


def _limits(args: argparse.Namespace) -> Any:
    from .limits import SETTINGS, read_limits

    overrides = {s.env: getattr(args, f"limit_{s.field}", None) for s in SETTINGS}
    return read_limits(os.environ, overrides)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = _parser(argv).parse_args(argv)
    try:
        if args.command == "build":
            return _build(args)
        if args.command == "run":
            from .containercli import run_command

            return run_command(args, _limits(args))
        return _images(args)
    except EngineError as exc:
        print(f"error: {exc.describe()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        _tidy_later()


def _tidy_later() -> None:
    """Have the store tidied in the background once this command is done (see tidy.py), unless
    the warm engine that serves it tidies once it is idle."""
    if not tidy_when_done:
        return
    from .store import Store
    from .tidy import start_if_needed

    if data_dir().is_dir():
        start_if_needed(Store(data_dir()))


def _build_args(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not name:
            raise InputError(f"--build-arg {pair!r}: expected NAME=VALUE")
        # Docker takes a bare NAME's value from the environment.
        values[name] = value if sep else os.environ.get(name, "")
    return values


def _build(args: argparse.Namespace) -> int:
    from .dockerfile import syntax

    syntax.start()  # the parser loads in its own process while the engine loads in this one
    from .builder import BuildOptions, build
    from .progress import PlainProgress
    from .store import Store

    if args.dry_run:
        return _dry_run(args)
    options = BuildOptions(
        context=args.context,
        dockerfile=args.dockerfile,
        tag=args.tag,
        target=args.target,
        build_args=_build_args(args.build_arg),
        no_cache=args.no_cache,
        limits=_limits(args),
        cache_scope=args.cache_scope,
    )
    sink = _json_sink if args.progress == "json" else PlainProgress(sys.stdout)
    if on_build is not None:
        on_build(options)
    result = build(Store(data_dir()), options, sink)
    if result.error is not None and args.progress == "json":
        print(f"error: {result.error.describe()}", file=sys.stderr)
    return result.exit_code


def _dry_run(args: argparse.Namespace) -> int:
    from .context import HashCache
    from .planner import BuildOptions
    from .predict import predict
    from .progress import print_prediction
    from .store import Store

    store = Store(data_dir())
    options = BuildOptions(
        context=args.context,
        dockerfile=args.dockerfile,
        target=args.target,
        build_args=_build_args(args.build_arg),
        no_cache=args.no_cache,
        limits=_limits(args),
        cache_scope=args.cache_scope,
    )
    found = predict(store, options, hash_cache=HashCache(store.root / "hashcache"))
    if args.progress == "json":
        print(json.dumps(found.to_json(), separators=(",", ":")))
    else:
        print_prediction(found.to_json(), sys.stdout)
    if found.error is not None:
        where = f"line {found.error['line']}: " if found.error.get("line") else ""
        print(f"error: {where}{found.error['message']}", file=sys.stderr)
        return InputError.exit_code
    return 0


def _json_sink(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _images(args: argparse.Namespace) -> int:
    from . import image as images
    from .store import Store

    store = Store(data_dir())
    if args.action == "import":
        if not args.tarball.is_file():
            raise InputError(f"no file at {args.tarball}")
        image = images.import_any(store, args.tarball, args.name)
        print(f"imported {args.name} {image.digest}")
        return 0
    if args.action == "export":
        return _export(store, args)
    if args.action == "seed":
        return _seed(store) if not args.debian else max(_seed(store), _seed_debian(store))
    if args.action in ("pull", "push"):
        return _transfer(store, args)
    if args.action == "df":
        return _df(store, args.json)
    if args.action == "squash":
        return _squash(store, args)
    return _ls(store)


def _squash(store: Any, args: argparse.Namespace) -> int:
    from .image.squash import squash_ref
    from .reference import local_name

    layered = store.get_image(args.name)
    squashed = squash_ref(store, args.name)
    name, tag = local_name(args.dest)
    store.tag(f"{name}:{tag}", squashed.digest)
    size = sum(store.layer(layer).size for layer in squashed.layers)
    before = sum(store.layer(layer).size for layer in layered.layers) if layered else 0
    print(f"squashed {args.name} ({len(layered.layers) if layered else 0} layers, {_mb(before)}) "
          f"into {name}:{tag} (1 layer, {_mb(size)}) {squashed.digest}")
    return 0


def _transfer(store: Any, args: argparse.Namespace) -> int:
    from .events import Emitter
    from .progress import PlainProgress
    from .registry.pull import pull
    from .registry.push import push
    from .registry.settings import Platform, RegistrySettings

    emitter = Emitter(_json_sink if args.progress == "json" else PlainProgress(sys.stdout))
    if args.action == "pull":
        settings = RegistrySettings.from_env()
        if args.platform:
            settings = dataclasses.replace(settings, platform=Platform.parse(args.platform, "--platform"))
        pull(store, args.name, settings=settings, report=emitter.emit)
        return 0
    result = push(store, args.name, args.dest, report=emitter.emit, compress=args.gzip)
    if args.progress == "plain":  # each skipped layer was named above, as it was skipped
        skipped = len(result.skipped)
        print(f"{len(result.layers) - skipped} layer(s) uploaded, {skipped} skipped as already there")
    return 0


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(col.ljust(w) for col, w in zip(row, widths, strict=True)).rstrip())


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _ls(store: Any) -> int:
    from .image.usage import disk_usage

    usage = disk_usage(store)
    rows = [("NAME", "ID", "LAYERS", "SIZE", "SHARED")]
    for image in usage.images:
        for name in image.names:
            rows.append((name, image.digest[7:19], str(len(image.layers)), _mb(image.size),
                         _mb(image.size - image.unique)))
    _table(rows)
    count = f"{len(usage.images)} image" + ("" if len(usage.images) == 1 else "s")
    print(f"{count} take {_mb(usage.stored)} on disk; "
          f"without shared layers they would take {_mb(usage.images_total)} (saved {_mb(usage.saved)})")
    return 0


def _df(store: Any, as_json: bool) -> int:
    from .image.usage import disk_usage

    usage = disk_usage(store)
    if as_json:
        print(json.dumps(usage.to_json(), indent=1))
        return 0
    rows = [("LAYER", "SIZE", "SHARED BY", "IMAGES")]
    for layer in usage.layers:
        rows.append((layer.diff_id[:19], _mb(layer.size), str(len(layer.images)), ", ".join(layer.images)))
    _table(rows)
    print(f"images {_mb(usage.images_total)}, stored {_mb(usage.stored)}, "
          f"saved by sharing {_mb(usage.saved)}")
    return 0


def _export(store: Any, args: argparse.Namespace) -> int:
    from . import image as images

    image = store.get_image(args.name)
    if image is None:
        raise InputError(f"no image {args.name!r} in the store (see `manage.py images ls`)")
    if args.format == "docker":
        images.export_docker_archive(store, image, args.file, [args.name])
    else:
        images.export_oci_archive(store, image, args.file, [args.name])
    print(f"exported {args.name} to {args.file}")
    return 0


SEED_NAME = "busybox:latest"


def _seed(store: Any) -> int:
    """Import busybox (from Debian's busybox-static) under busybox:latest and
    studio/busybox:1.35, once; an image already there is left alone."""
    import tempfile

    from . import image as images
    from .seed import busybox_rootfs

    names = (SEED_NAME, "studio/busybox:1.35")
    if all(store.get_image(name) is not None for name in names):
        print("seed: busybox is already in the store")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tar = busybox_rootfs(Path(tmp) / "busybox.tar")
        for name in names:
            image = images.import_any(store, tar, name)
    print(f"seed: imported busybox as {', '.join(names)} ({image.digest[:19]})")
    return 0


DEBIAN_NAME = "debian:bookworm"


def _seed_debian(store: Any) -> int:
    """Import a minimal Debian bookworm made with debootstrap as debian:bookworm, once."""
    from . import image as images
    from .seed import debian_rootfs

    if store.get_image(DEBIAN_NAME) is not None:
        print(f"seed: {DEBIAN_NAME} is already in the store")
        return 0
    print(f"seed: making {DEBIAN_NAME} with debootstrap (a few minutes)", flush=True)
    tmp = store.work_dir("seed")
    try:
        mirror = os.environ.get("STUDIO_DEBIAN_MIRROR")
        tar = debian_rootfs(tmp / "debian.tar", tmp, mirror=mirror)
        image = images.import_any(store, tar, DEBIAN_NAME)
    finally:
        store.discard(tmp)
    print(f"seed: imported {DEBIAN_NAME} ({image.digest[:19]})")
    return 0
