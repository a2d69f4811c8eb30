"""The `builder` command for tests, started warm.

A cold `builder` process spends ~4-8 s of this host's time importing torch, transformers and onnx before it does
anything, and the tests start it over a hundred times. Here a server process imports those packages once;
each call forks a fresh process from it that runs the console script's `builder.cli.main()` with the call's own
argv, working folder, environment, stdin (empty), stdout, stderr and exit status. Variables that the packages
read while being imported (HF_*, OMP_*, ...) take effect in the server only, so each set of them gets its own
server, started with it. Forking after the imports is what PyTorch's DataLoader workers do: the only threads
then are OpenBLAS's, which re-arms itself in a forked child.

`BUILDER_TESTS_COLD_CLI=1` starts every command as a cold process instead (`conftest.run_builder`)."""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NoReturn

PRELOAD = (
    "builder.cli",
    "builder.make.driver",
    "transformers.modeling_utils",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
    "onnx",
    "onnxruntime",
    "hydra",
)

# variables the preloaded packages read when imported: calls that set any of them differently fork from another
# server (TOKENIZERS_PARALLELISM is not one: tokenizers reads it whenever it decides, and the fork sets it)
IMPORT_TIME_PREFIXES = (
    "HF_", "HUGGINGFACE", "TRANSFORMERS", "TORCH", "PYTORCH", "OMP_", "MKL_", "KMP_", "ORT_", "ONNX", "PYTHON",
    "LD_", "CUDA", "XDG_",
)  # fmt: skip

MAX_SERVERS = 4
_servers: dict[tuple, subprocess.Popen] = {}  # one per set of the variables above
_calls: dict[tuple, int] = {}
_lock = threading.Lock()


def _imported_with(env: dict[str, str]) -> tuple:
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES)))


def usable(env: dict[str, str]) -> bool:
    """Whether this call forks from a warm server: one started with the same import-time variables, started on the
    second call with them (a set used once runs cold: a server would cost as much), up to MAX_SERVERS."""
    if os.environ.get("BUILDER_TESTS_COLD_CLI") == "1":
        return False
    key = _imported_with(env)
    with _lock:
        _calls[key] = _calls.get(key, 0) + 1
        return key in _servers or (_calls[key] >= 2 and len(_servers) < MAX_SERVERS)


def run(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`argv` (the command first) in a process forked from the warm server for this environment; what
    `subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)` returns."""
    with tempfile.TemporaryDirectory(prefix="builder-warm-") as tmp:
        files = {name: str(Path(tmp) / name) for name in ("stdout", "stderr", "pid", "status")}
        request = {"argv": argv, "env": env, "cwd": os.getcwd(), **files}
        with _lock:
            key = _imported_with(env)
            if key not in _servers:  # the server imports under this environment
                _servers[key] = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, env=env)
            server = _servers[key]
            server.stdin.write((json.dumps(request) + "\n").encode())  # type: ignore[union-attr]
            server.stdin.flush()  # type: ignore[union-attr]
        status, deadline = Path(files["status"]), time.monotonic() + timeout
        while not status.exists():
            if server.poll() is not None:
                raise RuntimeError(f"the warm builder server exited ({server.returncode})")
            if time.monotonic() > deadline and Path(files["pid"]).exists():
                os.kill(int(Path(files["pid"]).read_text()), signal.SIGKILL)
                while not status.exists():
                    time.sleep(0.02)
                raise subprocess.TimeoutExpired(argv, timeout)
            time.sleep(0.02)
        code = int(status.read_text())
        return subprocess.CompletedProcess(argv, code, _text(files["stdout"]), _text(files["stderr"]))


def _text(path: str) -> str:
    """As `subprocess.run(text=True)` decodes: the locale's encoding, universal newlines."""
    import locale

    text = Path(path).read_bytes().decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _serve() -> None:
    """Import PRELOAD, then fork one process per request line on stdin; write each one's pid when it starts and
    its exit status when it ends (a file each, named in the request). Ends when stdin closes."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    running: dict[int, str] = {}
    pending, open_ = b"", True
    while open_ or running:
        ready, _, _ = select.select([0] if open_ else [], [], [], 0.02)
        if ready:
            chunk = os.read(0, 1 << 16)
            open_ = bool(chunk)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(request)  # never returns
                running[pid] = request["status"]
                Path(request["pid"]).write_text(str(pid))
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            done = running.pop(pid)
            Path(done + ".part").write_text(str(code))
            os.replace(done + ".part", done)


def _child(request: dict) -> NoReturn:
    """The forked process: what the console script does (`sys.exit(main())`) with the request's argv, folder,
    environment and stdio, then Python's own shutdown up to the point where it would leave Python: threads joined
    (and what they registered to run then), atexit handlers, streams flushed. The C library's exit handlers are
    skipped (`os._exit`): onnxruntime's destructors would wait on a condition variable of a thread that lives in
    the server only, and hang."""
    code: int = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            opened = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(opened, fd)
            os.close(opened)
        sys.argv = request["argv"]
        from builder.cli import main

        sys.exit(main())
    except SystemExit as e:  # as the interpreter reads it
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            print(e.code, file=sys.stderr)
    except BaseException:
        sys.excepthook(*sys.exc_info())
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # the interpreter's first step at exit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    _serve()
