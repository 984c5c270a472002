"""Workers on several machines, simulated: each host is a Linux network namespace joined to
this one by a veth pair, and talks to a PostgreSQL server over TCP. One host's link is cut
while it runs jobs; the other hosts reclaim them once the lease expires, and nothing is lost.

The addresses are a private /24 (10.201.N.0/24) that exists only on the veths this test
makes: no traffic leaves the machine. Needs Linux, root and ``ip`` (iproute2); elsewhere
the test skips and says why. Namespaces, links and processes are removed in teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pg_fixtures import PgServer
from test_chaos import WAIT, Fleet, Proc, owner_pid, problems_in_logs, wait_for

import liteq

pytestmark = pytest.mark.slow

HOSTS = 3
JOBS = 36
LEASE = 1.0
TASKS = """
import os
import time

import liteq

q = liteq.Queue(os.environ.get("LITEQ_DB", "unused.db"))
RUNS = {runs!r}


@q.task(lease={lease!r}, max_retries=3, retry_delay=0.0)
def hold(n):
    time.sleep(0.4)
    # One write(2) per line with O_APPEND: lines from several processes never interleave.
    fd = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{{n}} {{os.getpid()}}\\n".encode())
    finally:
        os.close(fd)
    return n
"""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def namespaces_or_skip() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("network namespaces are Linux only")
    if os.geteuid() != 0:
        pytest.skip("making network namespaces needs root")
    if shutil.which("ip") is None:
        pytest.skip("the ip command is missing (Debian: apt-get install iproute2)")
    probe = f"lqprobe{os.getpid()}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace: {made.stderr.strip()}")
    ip("netns", "del", probe, check=False)


def free_subnet() -> str:
    """The first 10.201.N.0/24 that no interface here uses (another run may hold one)."""
    used = ip("-o", "-4", "addr", "show").stdout
    for n in range(256):
        if f" 10.201.{n}." not in used:
            return f"10.201.{n}"
    pytest.skip("every 10.201.N.0/24 is in use")


@dataclass(frozen=True)
class Host:
    """A simulated machine: a namespace, its link, and the server's address on that link."""

    netns: str
    link: str  # the veth end outside the namespace: down = the host is cut off
    address: str  # the host's own address, inside the namespace
    server: str  # the server's address on this host's link


class Network:
    """Namespaces and veth pairs, each host on its own /30 of one private /24."""

    def __init__(self, subnet: str) -> None:
        self.subnet = subnet
        self.hosts: list[Host] = []
        self.tag = f"lq{os.getpid() % 100_000}"

    def add_host(self) -> Host:
        i = len(self.hosts)
        base = 4 * i
        host = Host(
            netns=f"{self.tag}h{i}",
            link=f"{self.tag}o{i}",
            address=f"{self.subnet}.{base + 2}",
            server=f"{self.subnet}.{base + 1}",
        )
        self.hosts.append(host)  # before it exists: cleanup removes what was made
        inside = f"{self.tag}i{i}"
        ip("netns", "add", host.netns)
        ip("link", "add", host.link, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", host.netns)
        ip("addr", "add", f"{host.server}/30", "dev", host.link)
        ip("link", "set", host.link, "up")
        ip("-n", host.netns, "addr", "add", f"{host.address}/30", "dev", inside)
        ip("-n", host.netns, "link", "set", inside, "up")
        ip("-n", host.netns, "link", "set", "lo", "up")
        return host

    def cut(self, host: Host) -> None:
        ip("link", "set", host.link, "down")

    def restore(self, host: Host) -> None:
        ip("link", "set", host.link, "up")

    def cleanup(self) -> None:
        for host in self.hosts:
            ip("link", "del", host.link, check=False)  # its peer goes with it
            ip("netns", "del", host.netns, check=False)
        self.hosts.clear()


class Postmaster:
    """A second PostgreSQL server from pgserver's binaries, listening on the hosts' links."""

    def __init__(self, system_user: str | None) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

        self.bin = Path(POSTGRES_BIN_PATH)
        self.user = system_user  # postgres refuses to run as root
        self.base = Path(tempfile.mkdtemp(prefix="lqmh"))
        self.data = self.base / "data"
        self.popen: subprocess.Popen[bytes] | None = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def start(self, listen: list[str], clients: str) -> None:
        os.chmod(self.base, 0o755)
        if self.user is not None:
            shutil.chown(self.base, self.user)
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres"]
        subprocess.run(
            [*initdb, "--auth=trust", "--encoding=utf8", "--no-sync"],
            user=self.user,
            capture_output=True,
            check=True,
            timeout=60,
        )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {clients} trust\n")
        log = (self.base / "postgres.log").open("wb")
        options = ["-c", f"listen_addresses={','.join(listen)}", "-c", "fsync=off"]
        options += ["-p", str(self.port), "-k", str(self.base)]
        self.popen = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), *options],
            user=self.user,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def url(self, address: str) -> str:
        return f"postgresql://postgres@{address}:{self.port}/postgres"

    def wait_ready(self, address: str) -> None:
        deadline = time.monotonic() + WAIT
        while True:
            assert self.popen is not None and self.popen.poll() is None, self.log()
            try:
                psycopg.connect(self.url(address), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def log(self) -> str:
        path = self.base / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGQUIT)  # immediate shutdown: clients are cut
            try:
                self.popen.wait(WAIT)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(WAIT)
        with contextlib.suppress(ProcessLookupError):
            if self.popen is not None:
                os.killpg(self.popen.pid, signal.SIGKILL)  # any backend left behind
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class Cluster:
    network: Network
    server: Postmaster
    fleet: Fleet


@pytest.fixture
def cluster(pg_server: PgServer, tmp_path: Path) -> Iterator[Cluster]:
    namespaces_or_skip()
    network = Network(free_subnet())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = Postmaster(pg_server.server.system_user)
    fleet = Fleet(tmp_path)
    try:
        hosts = [network.add_host() for _ in range(HOSTS)]
        server.start([h.server for h in hosts], f"{network.subnet}.0/24")
        server.wait_ready(hosts[0].server)
        yield Cluster(network, server, fleet)
    finally:
        fleet.cleanup()
        network.cleanup()
        server.stop()


def start_worker(cluster: Cluster, host: Host) -> Proc:
    url = cluster.server.url(host.server)
    # LITEQ_DB: the task module's Queue is the database this worker serves (each host
    # reaches the server at its own address).
    argv = ["ip", "netns", "exec", host.netns, "env", f"LITEQ_DB={url}"]
    argv += [sys.executable, "-m", "liteq", "worker", url]
    return cluster.fleet.start(host.netns, [*argv, "--app", "mh_tasks", "-c", "2", "--no-cron"])


def test_a_host_cut_off_mid_job_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    runs = tmp_path / "runs.log"
    (tmp_path / "mh_tasks.py").write_text(TASKS.format(runs=str(runs), lease=LEASE))
    hosts = cluster.network.hosts
    url = cluster.server.url(hosts[0].server)
    # The hosts reach the server only through their own link: no route to the others'.
    elsewhere = cluster.server.url(hosts[1].server)
    code = f"import psycopg; psycopg.connect({elsewhere!r}, connect_timeout=1)"
    other = subprocess.run(
        ["ip", "netns", "exec", hosts[0].netns, sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert other.returncode != 0

    with liteq.Queue(url) as observer:
        jobs = [
            observer.enqueue("mh_tasks:hold", args=[n], lease=LEASE, max_retries=3, retry_delay=0)
            for n in range(JOBS)
        ]
        workers = [start_worker(cluster, host) for host in hosts]
        victim, victim_host = workers[0], hosts[0]

        def victim_runs() -> list[liteq.JobRecord]:
            running = observer.jobs(state="running", limit=1000)
            return [r for r in running if owner_pid(r.lease_owner) == victim.pid]

        wait_for(lambda: len(victim_runs()) == 2, "the first host to hold two jobs")
        cluster.network.cut(victim_host)
        held = {r.id: r.attempts for r in victim_runs()}
        assert len(held) == 2
        cut_at = time.time()

        def all_final() -> bool:
            return all(job.refresh().state in ("succeeded", "dead", "cancelled") for job in jobs)

        wait_for(all_final, "every job to finish on the hosts still connected")
        records = {job.id: job.refresh().record for job in jobs}
        assert {i: r.state.value for i, r in records.items()} == dict.fromkeys(records, "succeeded")
        assert [r.result for r in records.values()] == list(range(JOBS))
        assert observer.stats()["dead"] == 0
        # The cut host's jobs were taken back after their lease and run again elsewhere.
        for job_id, attempts in held.items():
            again = records[job_id]
            assert again.attempts > attempts, again
            assert again.finished_at is not None and again.finished_at >= cut_at + LEASE / 2
        assert victim.popen.poll() is None  # cut off, not dead: it just cannot reach anyone

        # The link comes back: the cut host's late outcomes are refused, and all stop.
        cluster.network.restore(victim_host)
        for worker in workers:
            worker.popen.send_signal(signal.SIGTERM)
        assert [w.popen.wait(WAIT) for w in workers] == [0] * HOSTS
        assert {job.id: job.refresh().record for job in jobs} == records
        log = victim.stderr()
        assert [i for i in held if f"job {i}: lease" not in log] == []  # said it lost them
        assert observer.jobs(state="running", limit=1000) == []
        assert observer.jobs(state="queued", limit=1000) == []

    executions: dict[int, int] = {}
    for line in runs.read_text().splitlines():
        n = int(line.split()[0])
        executions[n] = executions.get(n, 0) + 1
    assert sorted(executions) == list(range(JOBS))  # at least once each
    print(
        f"\nmultihost: {HOSTS} hosts, {JOBS} jobs, cut host held {sorted(held)}, "
        f"{sum(executions.values())} completed executions"
    )
    assert problems_in_logs(workers) == []
