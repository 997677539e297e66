"""`OrderedItems`: the rendered items of a JSON list, kept in key order, compact and cheap to write.

metadata.json lists every row group (and every file), and it is rewritten after every row group.
The items are rendered once each, when their row group ends; this module keeps them so that
neither memory nor the rewrite grows by more than the items' own bytes:

- the items live in chunks of at most `CHUNK` items, each one `bytearray` of text plus two
  `array("q")` columns (key, end offset): no Python object per item, so 10,000 row groups cost
  their text and 16 bytes each, not a str, an int and list slots each;
- row groups end almost in index order, so an insertion lands at or near the end of the last
  chunk: an in-place append, not a copy of everything before it. An insertion anywhere else
  (a resumed run fills gaps between kept row groups) moves at most one chunk's text;
- `parts` yields the chunks' buffers as they are, for a binary `writelines`: writing the list
  allocates no copy of it, so a large document does not leave a large transient in the heap.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator

#: Items per chunk: large enough that chunks are few, small enough that a mid-chunk insertion
#: (and a split) moves little text.
CHUNK = 512

_SEPARATOR = b",\n    "  # after every item; items sit one per line, inside a list at depth 1
_OPEN = b"[\n    "
_CLOSE = b"\n  ]"


class _Chunk:
    """Consecutive items: `text` holds each item followed by the separator; item i ends at
    `ends[i]` (separator included) and has key `keys[i]`; keys ascend."""

    def __init__(self) -> None:
        self.keys = array("q")
        self.ends = array("q")
        self.text = bytearray()

    def insert(self, key: int, item: bytes) -> None:
        at = bisect.bisect(self.keys, key)
        start = self.ends[at - 1] if at else 0
        size = len(item) + len(_SEPARATOR)
        self.text[start:start] = item + _SEPARATOR
        self.keys.insert(at, key)
        self.ends.insert(at, start)
        for later in range(at, len(self.ends)):
            self.ends[later] += size

    def split(self) -> _Chunk:
        """Move the second half of the items to a new chunk, returned."""
        half = len(self.keys) // 2
        cut = self.ends[half - 1]
        tail = _Chunk()
        tail.keys = self.keys[half:]
        tail.ends = array("q", (end - cut for end in self.ends[half:]))
        tail.text = self.text[cut:]
        del self.keys[half:], self.ends[half:], self.text[cut:]
        return tail


class OrderedItems:
    """Rendered JSON items (bytes, ASCII) kept in ascending order of an integer key."""

    def __init__(self) -> None:
        self._chunks: list[_Chunk] = []
        self._firsts: list[int] = []  # each chunk's first key, to find a key's chunk
        self._count = 0

    def insert(self, key: int, item: bytes) -> None:
        """Add `item` after every item whose key is not greater than `key`."""
        if not self._chunks:
            self._chunks.append(_Chunk())
            self._firsts.append(key)
        at = max(bisect.bisect(self._firsts, key) - 1, 0)
        chunk = self._chunks[at]
        chunk.insert(key, item)
        self._firsts[at] = chunk.keys[0]
        if len(chunk.keys) > CHUNK:
            tail = chunk.split()
            self._chunks.insert(at + 1, tail)
            self._firsts.insert(at + 1, tail.keys[0])
        self._count += 1

    def parts(self) -> Iterator[bytes | memoryview]:
        """The JSON list, one item per line, as buffers to write one after the other. The
        buffers are views of this object's storage: drop them before inserting again (a chunk
        cannot grow while a view of it is alive)."""
        if not self._count:
            yield b"[]"
            return
        yield _OPEN
        last = len(self._chunks) - 1
        for number, chunk in enumerate(self._chunks):
            view = memoryview(chunk.text)
            yield view[: -len(_SEPARATOR)] if number == last else view
        yield _CLOSE
