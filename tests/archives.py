"""Hostile archives built byte by byte, as an attacker would write them rather than as tarfile or
zipfile would: headers that declare gigabytes, names that are not UTF-8, members that repeat."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

BLOCK = 512


def tar_header(name: bytes, size: int, kind: bytes = b"0", *, mode: int = 0o644) -> bytes:
    """One ustar header block (GNU magic, so the long-name types are read as such)."""
    header = bytearray(BLOCK)
    header[0 : len(name[:100])] = name[:100]
    header[100:108] = b"%07o\0" % mode
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = b"%011o\0" % size
    header[136:148] = b"00000000000\0"
    header[148:156] = b" " * 8
    header[156:157] = kind
    header[257:265] = b"ustar  \0"
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def member(name: bytes, data: bytes, kind: bytes = b"0") -> bytes:
    return tar_header(name, len(data), kind) + data + b"\0" * (-len(data) % BLOCK)


def pax_record(key: str, value: str) -> bytes:
    """A pax record, "<length> <key>=<value>\\n", its length counting itself."""
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


END = b"\0" * (2 * BLOCK)


def gzipped(parts: Iterable[bytes], level: int = 9) -> bytes:
    """The parts gzip-compressed as they come, so that a gigabyte of them never sits in memory."""
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    out = [packer.compress(part) for part in parts]
    out.append(packer.flush())
    return b"".join(out)


def filler(size: int, byte: bytes = b"a") -> Iterator[bytes]:
    """`size` bytes in chunks of a megabyte, padded to a whole tar block."""
    chunk = byte * (1 << 20)
    left = size
    while left > 0:
        yield chunk[: min(left, len(chunk))]
        left -= len(chunk)
    yield b"\0" * (-size % BLOCK)


def header_bomb(kind: bytes, declared: int) -> bytes:
    """A gzip of one extension header (long name or link, pax extended or global) whose record is
    `declared` bytes long, then an ordinary small file."""

    def parts() -> Iterator[bytes]:
        yield tar_header(b"././@LongLink" if kind in b"LK" else b"./PaxHeaders/x", declared, kind)
        yield from filler(declared)
        yield member(b"after.txt", b"x")
        yield END

    return gzipped(parts())


def zip_of_folders(count: int) -> bytes:
    """A zip listing `count` empty folders: 30 + 46 bytes and a short name each."""
    local, central = [], []
    offset = 0
    for index in range(count):
        name = f"d{index}/".encode()
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
        central.append(
            struct.pack(
                "<4s4B4HL2L5H2L",
                b"PK\x01\x02",
                20,
                3,
                20,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                len(name),
                0,
                0,
                0,
                0,
                (0o40755 << 16) | 0x10,
                offset,
            )
            + name
        )
        local.append(header)
        offset += len(header)
    directory = b"".join(central)
    count16 = min(count, 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count16, count16, len(directory), offset, 0)
    return b"".join(local) + directory + end
