"""The views' Blueprint: flask-smorest's, reading every JSON body through one bounded parser.

Python's JSON parser recurses once per level of nesting and converts integers of any length,
so a body nested thousands of levels deep (RecursionError) or an integer of thousands of
digits (ValueError from the integer-string limit) would escape it as an internal error. Here
nesting is bounded before parsing, and an integer too long for any float is read, as most
JSON parsers read every number, as a float: infinite, which the schemas refuse by name.

It also documents, for every operation, every error status it may answer, in the one
envelope: those of its roles (``requires``: 401, 403, 429, 503), of its path (404), of its
method and arguments (400, 413, 415, 422), and those its view declares with ``may_answer``;
and, where a path or query parameter can make the request line too long, the HTTP server's
own 414. Any other way of documenting an error status is refused when the document is built.
"""

from __future__ import annotations

import http
import json
import re
from typing import Any, NoReturn

import flask_smorest
from flask import Flask
from marshmallow.utils import missing
from webargs.flaskparser import FlaskParser, is_json_request

from audit.queries import storable
from service.web.errors import HEADERS, MEANINGS, SERVER_ANSWERS, ApiError, may_answer
from service.web.schemas import ErrorSchema, document_policy

# Our bodies nest three levels deep; this leaves room and stays far from the recursion limit.
MAX_DEPTH = 32
# 10**308 is the order of the largest float: an integer of more digits is beyond it.
MAX_INTEGER_DIGITS = 308
# A JSON string (its closing quote optional, so that an unterminated one ends the scan), or
# a bracket: brackets inside strings are not nesting.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """Return how deep arrays and objects nest in ``text``, counting no further than
    ``limit + 1``."""
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif token == "]" or token == "}":
            depth -= 1
    return deepest


def _integer(text: str) -> int | float:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        return float(text)
    return int(text)


class _NotJson(ValueError):
    pass


def _constant(name: str) -> NoReturn:
    raise _NotJson(f"{name} is not a JSON value")


def parse_json_body(data: bytes) -> Any:
    """Parse a request body as JSON, or raise ``json.JSONDecodeError`` saying why not.

    Nesting deeper than ``MAX_DEPTH`` is refused; ``NaN`` and ``Infinity`` (which Python
    accepts) are refused; an integer of more than ``MAX_INTEGER_DIGITS`` digits is read as a
    float (infinite).
    """
    text = data.decode("utf-8")
    if nesting_depth(text) > MAX_DEPTH:
        raise json.JSONDecodeError(f"arrays and objects nest deeper than {MAX_DEPTH} levels",
                                   text, 0)
    try:
        return json.loads(text, parse_int=_integer, parse_constant=_constant)
    except _NotJson as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from None


def unstorable_text(value: Any, path: str = "") -> str | None:
    """Return the dotted path of the first string (or key) in ``value`` that no database can
    store — one with a NUL character or a lone surrogate, both valid JSON — else None."""
    if isinstance(value, str):
        return None if storable(value) else path or "$"
    if isinstance(value, dict):
        for key, item in value.items():
            # A key that cannot be stored is named escaped, so that the answer can carry it.
            name = key if storable(key) else key.encode("utf-8", "backslashreplace").decode()
            where = f"{path}.{name}" if path else name
            if name is not key:
                return where
            found = unstorable_text(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_text(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


class BodyParser(FlaskParser):
    """webargs' Flask parser, reading JSON bodies with :func:`parse_json_body`.

    Text that neither database can store is refused here, for every body and field alike,
    as a 422 naming the field, rather than failing at the database.
    """

    def _raw_load_json(self, req) -> Any:
        if not is_json_request(req):
            return missing
        body = parse_json_body(req.get_data(cache=True))
        where = unstorable_text(body)
        if where is not None:
            raise ApiError(422, f"{where} holds a NUL character or a lone surrogate, which "
                           "no text may hold", fields={where: ["must not hold a NUL character "
                                                               "or a lone surrogate"]})
        return body

    def _handle_invalid_json_error(self, error, req, *args: Any, **kwargs: Any) -> NoReturn:
        if isinstance(error, UnicodeDecodeError):
            raise ApiError(400, "the body is not valid JSON: it is not UTF-8 text")
        raise ApiError(400, f"the body is not valid JSON: {error.msg}")


# A converter in a URL rule: ``<application_id>``, ``<int:seq>``.
_PATH_PARAMETER = re.compile(r"<[^<>]+>")
# Methods whose bodies must be JSON (app._require_json_bodies refuses others with a 415).
_BODY_METHODS = frozenset({"post", "put", "patch"})


def error_response(status: int, notes: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The OpenAPI response of an error status: its meaning (and ``notes``), its headers, and
    the one envelope."""
    # What the HTTP server answers itself is its own HTML page.
    content = ({"text/html": {"schema": {"type": "string"}}} if status in SERVER_ANSWERS
               else {"application/json": {"schema": ErrorSchema}})
    response: dict[str, Any] = {"description": " ".join((MEANINGS[status], *notes)),
                                "content": content}
    headers = {name: {"description": description, "required": always,
                      "schema": {"type": "integer" if name == "Retry-After" else "string"}}
               for name, description, always in HEADERS.get(status, ())}
    if headers:
        response["headers"] = headers
    return response


def response_name(status: int) -> str:
    """The component name of an error status's response, as flask-smorest names them (the
    names vary with Python's version: 413 is CONTENT_TOO_LARGE from 3.13)."""
    return http.HTTPStatus(status).name


def derived_errors(doc: dict[str, Any], declared: dict[int, list[str]],
                   method: str) -> dict[int, list[str]]:
    """Every error status an operation may answer: those its view declared (``requires``,
    ``may_answer``, a path parameter's 404) and those its method and arguments cause."""
    errors = {status: list(notes) for status, notes in declared.items()}
    if method in _BODY_METHODS:
        errors.setdefault(415, [])
    if "requestBody" in doc:
        for status in (400, 413, 415, 422):
            errors.setdefault(status, [])
    if any(parameter.get("in") == "query" for parameter in doc.get("parameters", ())):
        errors.setdefault(414, [])
        errors.setdefault(422, [])
    return errors


class Blueprint(flask_smorest.Blueprint):
    """A blueprint of the API: bodies parsed by :class:`BodyParser`, and every operation
    documented with every error it may answer, in the one envelope."""

    ARGUMENTS_PARSER = BodyParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_errors_doc)

    def route(self, rule: str, *, parameters=None, tags=None, **options: Any):
        """Register a view; one whose path names a resource also documents 404, and the
        414 of a path too long for the server."""
        register = super().route(rule, parameters=parameters, tags=tags, **options)

        def decorator(view):
            if _PATH_PARAMETER.search(rule):
                view = may_answer(404, 414)(view)
            return register(view)

        return decorator

    @staticmethod
    def _prepare_errors_doc(doc: dict[str, Any], doc_info: dict[str, Any], *, method: str,
                            **kwargs: Any) -> dict[str, Any]:
        """Document the operation's errors: by name when they mean what they always mean,
        in full with the operation's own reasons; success first, then errors by status."""
        responses = doc.get("responses", {})
        errors = derived_errors(doc, doc_info.get("errors", {}), method)
        ordered = {status: response for status, response in responses.items()
                   if str(status).isdigit() and int(status) < 400}
        for status in sorted(errors):
            notes = errors[status]
            ordered[status] = error_response(status, notes) if notes else response_name(status)
        # An error documented by any other means would escape the envelope's description.
        elsewhere = {str(status) for status in responses} - {str(status) for status in ordered}
        if elsewhere:
            summary = doc_info.get("docstring", {}).get("summary")
            raise ValueError(f"{summary!r} documents {sorted(elsewhere)} by hand; an error "
                             "status must come from may_answer or be derived")
        doc["responses"] = ordered
        return doc

    def register_views_in_doc(self, api, app: Flask, spec, *, name, parameters) -> None:
        """Document the views, marking the bounds that the policy in force sets on requests
        (written in as the document is served)."""
        document_policy(api.ma_plugin.converter)
        super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)
