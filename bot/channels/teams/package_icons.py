"""The Teams app package's two icons checked: the colour icon 192x192, the outline icon 32x32
and white on a transparent background, read from the PNG itself (no imaging library).

Apart from the manifest's rules (``package.py``): reading a PNG's chunks and rows is a small
decoder of its own, with nothing of the manifest in it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

COLOR_ICON_SIZE: Final = (192, 192)
OUTLINE_ICON_SIZE: Final = (32, 32)
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# PNG colour types: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA.
_CHANNELS: Final = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ALPHA_TYPES: Final = frozenset({4, 6})
# An outline icon's visible pixels are white; anti-aliased edges may be a little off-white.
_VISIBLE_ALPHA: Final = 16
_WHITE_ENOUGH: Final = 0xF0


@dataclass(frozen=True)
class PngInfo:
    """What the package checks of a PNG: its size and whether it has transparency."""

    width: int
    height: int
    colour_type: int
    bit_depth: int
    interlaced: bool
    transparency: bool


def check_icons(icons: dict[str, Path]) -> list[str]:
    """The broken icon rules: colour 192x192, outline 32x32 and white on transparent."""
    problems: list[str] = []
    for role, path in icons.items():
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            problems.append(f"icons.{role}: {path} is missing.")
            continue
        except OSError as error:
            problems.append(f"icons.{role}: {path} cannot be read ({error.strerror or error}).")
            continue
        try:
            info = png_info(data)
        except ValueError as error:
            problems.append(f"icons.{role}: {path.name} is not a valid PNG ({error}).")
            continue
        wanted = COLOR_ICON_SIZE if role == "color" else OUTLINE_ICON_SIZE
        if (info.width, info.height) != wanted:
            problems.append(
                f"icons.{role}: {path.name} is {info.width}x{info.height} pixels, "
                f"it must be {wanted[0]}x{wanted[1]}."
            )
        if role == "outline":
            if not info.transparency:
                problems.append(
                    f"icons.outline: {path.name} has no transparency; it must be white on a "
                    "transparent background."
                )
            elif not _outline_is_white(data, info):
                problems.append(
                    f"icons.outline: {path.name} has pixels that are not white; it must be "
                    "white on a transparent background."
                )
    return problems


def png_info(data: bytes) -> PngInfo:
    """Size and transparency of a PNG, from its header chunks; ValueError if it is no PNG."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("no PNG signature")
    chunks = dict(_header_chunks(data))
    header = chunks.get(b"IHDR")
    if header is None or len(header) != 13:
        raise ValueError("no IHDR chunk")
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if colour_type not in _CHANNELS or width == 0 or height == 0:
        raise ValueError("bad IHDR chunk")
    return PngInfo(
        width=width,
        height=height,
        colour_type=colour_type,
        bit_depth=depth,
        interlaced=interlace == 1,
        transparency=colour_type in _ALPHA_TYPES or b"tRNS" in chunks,
    )


def _header_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The chunks before the image data; every chunk up to IEND is checked against its CRC."""
    position = len(_PNG_SIGNATURE)
    in_header = True
    while position + 8 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        crc = data[position + 8 + length : position + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise ValueError("truncated")
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise ValueError(f"bad checksum in the {kind.decode('latin-1')} chunk")
        if kind == b"IEND":
            return
        in_header = in_header and kind != b"IDAT"
        if in_header:
            yield kind, body
        position += 12 + length
    raise ValueError("truncated")


def _outline_is_white(data: bytes, info: PngInfo) -> bool:
    """Whether every visible pixel is (near) white; only 8-bit, non-interlaced RGBA or grey+alpha
    images are decoded, others pass on their header alone."""
    if info.colour_type not in _ALPHA_TYPES or info.bit_depth != 8 or info.interlaced:
        return True
    channels = _CHANNELS[info.colour_type]
    try:
        rows = _decode_rows(data, info.width, info.height, channels)
    except (ValueError, zlib.error):
        return False
    for row in rows:
        for start in range(0, len(row), channels):
            pixel = row[start : start + channels]
            if pixel[-1] >= _VISIBLE_ALPHA and min(pixel[:-1]) < _WHITE_ENOUGH:
                return False
    return True


def _decode_rows(data: bytes, width: int, height: int, channels: int) -> list[bytes]:
    compressed = bytearray()
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        if data[position + 4 : position + 8] == b"IDAT":
            compressed += data[position + 8 : position + 8 + length]
        position += 12 + length
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    if len(raw) < height * (stride + 1):
        raise ValueError("image data too short")
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
            elif kind != 0:
                raise ValueError(f"unknown filter {kind}")
        rows.append(bytes(line))
        previous = line
    return rows


def _paeth(left: int, up: int, corner: int) -> int:
    estimate = left + up - corner
    to_left, to_up, to_corner = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
    if to_left <= to_up and to_left <= to_corner:
        return left
    return up if to_up <= to_corner else corner


__all__ = ["COLOR_ICON_SIZE", "OUTLINE_ICON_SIZE", "PngInfo", "check_icons", "png_info"]
