"""Serializers: strict JSON that names the bad argument, and opt-in pickle."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import liteq
from liteq.codec import JsonCodec, PickleCodec, dumps_call, make_codec


class Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.x == self.x

    def __hash__(self) -> int:
        return self.x


@pytest.fixture
def json_codec() -> JsonCodec:
    return JsonCodec()


def test_json_roundtrip_of_plain_values(json_codec: JsonCodec) -> None:
    value = {"a": [1, 2.5, "x", True, None], "b": {"c": []}, "ü": "é"}
    assert json_codec.loads(json_codec.dumps(value, "v")) == value


def test_json_tuples_come_back_as_lists(json_codec: JsonCodec) -> None:
    assert json_codec.loads(json_codec.dumps((1, (2, 3)), "v")) == [1, [2, 3]]


def test_json_loads_bytes(json_codec: JsonCodec) -> None:
    assert json_codec.loads(b'{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"tags": {1, 2}}, r"argument 'tags' is a set"),
        ({"obj": Point(1)}, r"argument 'obj' is a Point"),
        ({"ratio": math.nan}, r"argument 'ratio' is nan"),
        ({"ratio": math.inf}, r"argument 'ratio' is inf"),
        ({"counts": {1: "one"}}, r"argument 'counts' has a key 1 of type int"),
        ({"deep": {"a": [1, {"b": {3}}]}}, r"argument 'deep'\['a'\]\[1\]\['b'\] is a set"),
        ({"raw": b"bytes"}, r"argument 'raw' is a bytes"),
    ],
)
def test_json_error_names_the_keyword_argument(kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(liteq.SerializationError, match=expected):
        dumps_call(JsonCodec(), (), kwargs)


def test_json_error_names_the_positional_argument() -> None:
    with pytest.raises(liteq.SerializationError, match=r"argument 1 is a set"):
        dumps_call(JsonCodec(), ("fine", {1}), {})


def test_json_self_referencing_list_is_a_serialization_error(json_codec: JsonCodec) -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(liteq.SerializationError, match="v"):
        json_codec.dumps(loop, "v")


def test_args_must_be_a_sequence_and_kwargs_a_mapping() -> None:
    with pytest.raises(liteq.SerializationError, match="args must be"):
        dumps_call(JsonCodec(), "abc", {})
    with pytest.raises(liteq.SerializationError, match="kwargs must be"):
        dumps_call(JsonCodec(), (), [("a", 1)])  # type: ignore[arg-type]


def test_pickle_roundtrip_of_arbitrary_objects() -> None:
    codec = PickleCodec()
    value = {"point": Point(3), "tags": {1, 2}}
    assert codec.loads(codec.dumps(value, "v")) == value


def test_unpicklable_value_is_a_serialization_error() -> None:
    with pytest.raises(
        liteq.SerializationError, match=r"argument 0 \(a function\) cannot be pickled"
    ):
        dumps_call(PickleCodec(), (lambda: None,), {})


def test_unknown_serializer_is_refused() -> None:
    with pytest.raises(liteq.SerializationError, match="unknown serializer"):
        make_codec("yaml")


def test_pickle_queue_runs_a_task_with_objects(tmp_path: Path) -> None:
    q = liteq.Queue(tmp_path / "p.db", serializer="pickle", clock=liteq.FakeClock())

    @q.task(name="shift")
    def shift(point: Point, by: int) -> Point:
        return Point(point.x + by)

    job = shift.enqueue(Point(1), by=2)
    assert job.refresh().args == [Point(1)]
    q.drain()
    assert job.result(timeout=0) == Point(3)
    q.close()


def test_json_queue_refuses_objects_at_enqueue(q: liteq.Queue) -> None:
    @q.task(name="shift")
    def shift(point: object) -> None: ...

    with pytest.raises(liteq.SerializationError, match="argument 0 is a Point"):
        shift.enqueue(Point(1))
    assert q.jobs() == []


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_value_roundtrips(value: object) -> None:
    codec = JsonCodec()
    assert codec.loads(codec.dumps(value, "v")) == value


@given(json_values, st.frozensets(st.integers(), max_size=2))
def test_a_set_anywhere_is_refused(value: object, bad: frozenset[int]) -> None:
    with pytest.raises(liteq.SerializationError, match="argument 'x'"):
        dumps_call(JsonCodec(), (), {"x": [value, {"k": set(bad)}]})
