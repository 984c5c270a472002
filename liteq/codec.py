"""Serializers for arguments and results: JSON by default, pickle on request.

JSON is checked strictly at encode time so a bad argument fails at ``enqueue``
(naming the argument), never later in a worker.
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from liteq.errors import SerializationError

Payload = str | bytes


class Codec(Protocol):
    name: str

    def dumps(self, value: Any, what: str) -> Payload:
        """Encode ``value``; ``what`` names it in errors (``"argument 'to'"``)."""
        ...

    def loads(self, data: Payload) -> Any: ...


def _json_problem(value: Any, path: str) -> str | None:
    """Return a description of the first non-JSON part of ``value``, or None."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return None
    if kind is float:
        return None if math.isfinite(value) else f"{path} is {value!r}, which JSON cannot hold"
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"{path} has a key {key!r} of type {type(key).__name__}; JSON keys are str"
            problem = _json_problem(item, f"{path}[{key!r}]")
            if problem:
                return problem
        return None
    return (
        f"{path} is a {kind.__name__}, which is not JSON (int, float, str, bool, None, list, dict)"
    )


class JsonCodec:
    """Compact JSON text; tuples come back as lists."""

    name = "json"

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
        )
        self._decoder = json.JSONDecoder()

    def dumps(self, value: Any, what: str) -> Payload:
        try:
            problem = _json_problem(value, what)
        except RecursionError:  # a self-referencing or absurdly deep structure
            raise SerializationError(f"{what} is nested too deeply (or contains itself)") from None
        if problem:
            raise SerializationError(problem)
        try:
            return self._encoder.encode(value)
        except (TypeError, ValueError, RecursionError) as exc:  # e.g. a self-referencing list
            raise SerializationError(f"{what} cannot be encoded as JSON: {exc}") from None

    def loads(self, data: Payload) -> Any:
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        return self._decoder.decode(data)


class PickleCodec:
    """Pickle: any picklable object. Unsafe with a database you do not trust."""

    name = "pickle"

    def dumps(self, value: Any, what: str) -> Payload:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            kind = type(value).__name__
            raise SerializationError(f"{what} (a {kind}) cannot be pickled: {exc}") from None

    def loads(self, data: Payload) -> Any:
        if isinstance(data, str):
            data = data.encode("utf-8")
        return pickle.loads(data)


def make_codec(name: str) -> Codec:
    if name == "json":
        return JsonCodec()
    if name == "pickle":
        return PickleCodec()
    raise SerializationError(f"unknown serializer {name!r}; use 'json' or 'pickle'")


def dumps_call(
    codec: Codec, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[Payload, Payload]:
    """Encode a call's arguments, naming the first one that cannot be encoded."""
    if type(kwargs) is not dict or type(args) not in (tuple, list):  # the usual: no ABC checks
        if not isinstance(kwargs, Mapping):
            raise SerializationError(f"kwargs must be a mapping, not {type(kwargs).__name__}")
        if isinstance(args, str | bytes) or not isinstance(args, Sequence):
            raise SerializationError(f"args must be a list or tuple, not {type(args).__name__}")
    if not args and not kwargs and isinstance(codec, JsonCodec):
        return "[]", "{}"  # the common no-argument call, without encoding anything
    try:
        return codec.dumps(list(args), "args"), codec.dumps(dict(kwargs), "kwargs")
    except SerializationError:
        # Encode again one argument at a time to name the culprit in the error.
        for index, value in enumerate(args):
            codec.dumps(value, f"argument {index}")
        for key, value in kwargs.items():
            if not isinstance(key, str):
                raise SerializationError(f"keyword argument name {key!r} is not a str") from None
            codec.dumps(value, f"argument {key!r}")
        raise
