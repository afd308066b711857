"""A seekable file over an object that fetches only the byte ranges read."""
from __future__ import annotations

import io
from typing import Any, BinaryIO, Callable


class RangeFile(io.RawIOBase):
    """A read-only, seekable raw file over ``size`` bytes served by ``fetch(start, end)``."""

    def __init__(self, size: int, fetch: Callable[[int, int], bytes]):
        super().__init__()
        self.size, self.fetch, self.pos = size, fetch, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        end = min(self.pos + len(buffer), self.size)
        if end <= self.pos:
            return 0
        data = self.fetch(self.pos, end)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def buffered(size: int, fetch: Callable[[int, int], bytes], buffer_size: int) -> BinaryIO:
    """A buffered reader over :class:`RangeFile`: reads ``buffer_size`` blocks at a time."""
    return io.BufferedReader(RangeFile(size, fetch), buffer_size)  # type: ignore[return-value]
