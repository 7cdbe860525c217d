"""The dashboard's charts, kept by their input: a chart is drawn again only when its numbers
changed.

Drawing a chart costs matplotlib 15–60 ms; a dashboard page has a dozen or more, most of which
(the training distributions, a quiet source's latency, an older window's series) do not
change from one load to the next. Each chart is kept under the SHA-256 of its function's
name and arguments, as data URIs, in a bounded least-recently-used map: one per worker.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from service.web.charts.monitoring import svg_data_uri


class ChartCache:
    """Charts as data URIs, kept by their function and arguments (least recently used go
    first)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.drawn = 0

    def uri(self, draw: Callable[..., str], *args: Any, **kwargs: Any) -> str:
        """The chart ``draw(*args, **kwargs)`` as a data URI, drawn only if not kept."""
        text = json.dumps([draw.__module__, draw.__qualname__, args, kwargs], sort_keys=True,
                          default=str, ensure_ascii=False)
        key = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        uri = svg_data_uri(draw(*args, **kwargs))
        with self._lock:
            self.drawn += 1
            self._items[key] = uri
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return uri

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
