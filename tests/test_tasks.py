"""Task objects: names, options, local calls, and name resolution (no worker involved)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import liteq
from liteq.apps import load_app
from liteq.tasks import TaskRegistry, TaskResolver, default_task_name


def module_level_function() -> None: ...


class Holder:
    @staticmethod
    def method() -> None: ...


def test_default_name_is_module_and_qualname() -> None:
    assert default_task_name(module_level_function) == f"{__name__}:module_level_function"
    assert default_task_name(Holder.method) == f"{__name__}:Holder.method"


def module_level_add(a: int, b: int) -> int:
    return a + b


def test_decorated_task_gets_the_default_name(q: liteq.Queue) -> None:
    add = q.task()(module_level_add)
    assert add.name == f"{__name__}:module_level_add"
    assert add.name in q.registry


def test_bare_decorator_works(q: liteq.Queue) -> None:
    @q.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    assert isinstance(add, liteq.Task)
    assert add(1, 2) == 3


def test_explicit_name(q: liteq.Queue) -> None:
    @q.task(name="email.send")
    def send(to: str) -> str:
        return to

    assert send.name == "email.send"
    assert q.registry.get("email.send") is send


def test_task_in_a_script_is_named_after_the_script(tmp_path: Path) -> None:
    script = tmp_path / "myscript.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import liteq
            q = liteq.Queue({str(tmp_path / "s.db")!r})

            @q.task()
            def hello():
                return "hi"

            print(hello.name)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "myscript:hello"
    assert not (tmp_path / "s.db").exists()  # decorating touches no disk


def test_calling_a_task_runs_it_locally_without_the_queue(q: liteq.Queue, db_path: Path) -> None:
    @q.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    assert add.__wrapped__.__name__ == "add"  # type: ignore[attr-defined]
    assert not db_path.exists()


def test_decorating_a_task_twice_is_an_error(q: liteq.Queue) -> None:
    @q.task(name="add")
    def add() -> None: ...

    with pytest.raises(liteq.ConfigError, match="already a task"):
        q.task()(add)


@pytest.mark.parametrize(
    "options",
    [{"timeout": 0}, {"lease": -1}, {"max_retries": -1}, {"retry_delay": -1}, {"bogus": 1}],
)
def test_bad_task_options_are_config_errors(q: liteq.Queue, options: dict[str, object]) -> None:
    with pytest.raises(liteq.ConfigError):
        q.task(**options)(module_level_function)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "options",
    [{"delay": -1}, {"timeout": 0}, {"max_retries": -1}, {"priority": 1.5}],
)
def test_bad_enqueue_options_are_config_errors(q: liteq.Queue, options: dict[str, object]) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    with pytest.raises(liteq.ConfigError):
        noop.options(**options)  # type: ignore[arg-type]


def test_delay_and_eta_together_are_refused(q: liteq.Queue) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    with pytest.raises(liteq.ConfigError, match="delay or eta"):
        noop.options(delay=1, eta=datetime.now(UTC))


def test_chained_options_override_earlier_ones(q: liteq.Queue, clock: liteq.FakeClock) -> None:
    @q.task(name="noop")
    def noop() -> None: ...

    job = noop.options(priority=1, delay=5).options(priority=7, queue="x").enqueue()
    assert (job.priority, job.queue, job.due_at) == (7, "x", clock.now() + 5)


def test_options_returns_a_copy_and_leaves_the_task_alone(q: liteq.Queue) -> None:
    @q.task(name="noop", queue="base")
    def noop() -> None: ...

    noop.options(queue="other")
    assert noop.enqueue().queue == "base"


def test_enqueue_many_refuses_a_bare_string(q: liteq.Queue) -> None:
    @q.task(name="noop")
    def noop(x: str) -> None: ...

    with pytest.raises(liteq.ConfigError, match="args tuples or kwargs dicts"):
        noop.enqueue_many(["abc"])


def test_resolver_prefers_registered_tasks(q: liteq.Queue) -> None:
    @q.task(name="job.a")
    def a() -> None: ...

    assert TaskResolver([q.registry]).resolve("job.a") is a


def test_resolver_imports_a_task_by_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "resolvable_tasks.py").write_text(
        "import liteq\nq = liteq.Queue('unused.db')\n\n@q.task()\ndef ping():\n    return 'pong'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    task = TaskResolver([]).resolve("resolvable_tasks:ping")
    assert task.name == "resolvable_tasks:ping"
    assert task() == "pong"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("os:system", "not a liteq task"),
        ("no_such_module_xyz:fn", "cannot import module"),
        ("os:no_such_attribute", "has no attribute"),
        ("plain-name", "no task named"),
    ],
)
def test_resolver_refuses_anything_but_a_task(name: str, message: str) -> None:
    with pytest.raises(liteq.TaskNotFound, match=message):
        TaskResolver([TaskRegistry()]).resolve(name)


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "loadable_app.py").write_text(
        "import liteq\n"
        "q = liteq.Queue('unused.db')\n\n"
        "@q.task(name='app.ping')\n"
        "def ping():\n"
        "    return 'pong'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "loadable_app"
    sys.modules.pop("loadable_app", None)


def test_load_app_finds_the_queue_registry(app_module: str) -> None:
    registries = load_app(app_module)
    queue = sys.modules[app_module].q
    assert registries[0] is queue.registry
    assert TaskResolver(registries).resolve("app.ping") is queue.registry.get("app.ping")
    assert load_app(f"{app_module}:q") == [queue.registry]


def test_load_app_accepts_a_single_task(app_module: str) -> None:
    [registry] = load_app(f"{app_module}:ping")
    assert registry.names() == ["app.ping"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_app_module_xyz", "cannot import app"),
        ("loadable_app:missing", "has no attribute"),
        ("loadable_app:liteq", "neither a liteq.Queue nor a task"),
        (":q", "expected MODULE"),
    ],
)
def test_bad_app_specs_are_config_errors(app_module: str, spec: str, message: str) -> None:
    with pytest.raises(liteq.ConfigError, match=message):
        load_app(spec)


def test_load_app_makes_a_registry_class_in_each_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How liteq.contrib.django reaches every pool process: --app MODULE:RegistryClass.
    (tmp_path / "registry_class_app.py").write_text(
        "from liteq.tasks import TaskRegistry\n\n"
        "class Made(TaskRegistry):\n"
        "    count = 0\n\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        type(self).count += 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        [first] = load_app("registry_class_app:Made")
        [second] = load_app("registry_class_app:Made")
        made = sys.modules["registry_class_app"].Made
        assert type(first) is made and first is not second and made.count == 2
        assert load_app("registry_class_app") == []  # a class found in a module is not made
        assert made.count == 2
    finally:
        sys.modules.pop("registry_class_app", None)
