"""Request bodies within the service's limit, however they are sent.

A body with a Content-Length over ``MAX_CONTENT_LENGTH`` is refused (413) before it is read.
A chunked body has no length: the server (gunicorn, Werkzeug's) ends its stream, and
Werkzeug stops reading it at the limit, silently, so a longer body would be parsed cut short
(a 400 "not valid JSON", or a form missing its end). Here the stream reads one byte past the
limit, and that byte makes the body a 413: every body over the limit is refused whole.
"""

from __future__ import annotations

from typing import IO

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream


class CappedStream(LimitedStream):
    """A body stream that refuses (413) a body of more than ``cap`` bytes."""

    def __init__(self, stream: IO[bytes], cap: int) -> None:
        # One byte more than the cap is let through, to tell a body of the cap from a longer one.
        super().__init__(stream, cap + 1, is_max=True)
        self.cap = cap

    def readinto(self, b: bytearray) -> int | None:  # type: ignore[override]
        read = super().readinto(b)
        if self.tell() > self.cap:
            raise RequestEntityTooLarge()
        return read


class CappedRequest(Request):
    """Flask's request, whose body, sent with a length or without, is at most
    ``max_content_length`` bytes."""

    @cached_property
    def stream(self) -> IO[bytes]:
        cap = self.max_content_length
        if (cap is not None and self.content_length is None and not self.shallow
                and "wsgi.input_terminated" in self.environ):
            return CappedStream(self.environ["wsgi.input"], cap)  # type: ignore[return-value]
        return get_input_stream(self.environ, max_content_length=cap)
