"""A throwaway PostgreSQL on loopback for the benchmarks, used when DATABASE_URL is not set.

initdb into a temporary directory (as the `postgres` OS user when running as root, because
initdb refuses root), start it on a free port, and stop and delete it at exit.
"""

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

_started: list[str] = []  # data directories of the servers started by this process


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds used so far by a process and its live descendants (Linux)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in tree)


def server_cpu_seconds() -> float | None:
    """CPU seconds used so far by the throwaway server (postmaster and all its processes), or
    None when none was started here."""
    if not _started:
        return None
    with open(os.path.join(_started[-1], "postmaster.pid")) as pid_file:
        return process_tree_cpu_seconds(int(pid_file.readline()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit(
            "PostgreSQL is not installed (/usr/lib/postgresql is missing). Run `make test` "
            "first, which installs it, or set DATABASE_URL to a PostgreSQL database."
        )
    return os.path.dirname(found[-1])


def _as_db_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def start() -> str:
    """Start a server and return a DATABASE_URL for a new, empty database on it."""
    bin_dir = _bin_dir()
    data_root = tempfile.mkdtemp(prefix="csp-bench-pg-")
    data_dir = os.path.join(data_root, "data")
    if os.geteuid() == 0:
        shutil.chown(data_root, user="postgres", group="postgres")
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run(_as_db_user(list(args)), check=True, stdout=subprocess.DEVNULL)

    run(
        f"{bin_dir}/initdb",
        "-D",
        data_dir,
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    options = (
        f"-p {port} -k {data_root} -c listen_addresses=127.0.0.1 "
        "-c shared_buffers=256MB -c max_wal_size=2GB"
    )
    run(f"{bin_dir}/pg_ctl", "-D", data_dir, "-o", options, "-l", f"{data_root}/log", "-w", "start")

    def stop() -> None:
        subprocess.run(
            _as_db_user([f"{bin_dir}/pg_ctl", "-D", data_dir, "-m", "fast", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(data_root, ignore_errors=True)

    atexit.register(stop)
    _started.append(data_dir)
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    _wait_ready(url)
    _create_database(url, "csp_bench")
    return f"postgres://postgres@127.0.0.1:{port}/csp_bench"


def _wait_ready(url: str) -> None:
    import psycopg2

    for _ in range(100):
        try:
            psycopg2.connect(url).close()
            return
        except psycopg2.OperationalError:
            time.sleep(0.1)
    sys.exit("The throwaway PostgreSQL did not start.")


def _create_database(url: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
