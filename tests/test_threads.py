"""Thread count: as asked, from the environment, or the cores other programs leave idle."""

import os

import pytest
import torch
from helpers import run_cli

from microsr.errors import InputError
from microsr.threads import THREAD_VARIABLES, busy_cores, default_thread_count, usable_cores, use_threads


@pytest.fixture
def restore_threads(monkeypatch):
    before = torch.get_num_threads()
    for name in (*THREAD_VARIABLES, "MICROSR_THREADS"):
        monkeypatch.delenv(name, raising=False)
    yield
    torch.set_num_threads(before)


def test_an_asked_count_reaches_torch_and_the_environment(restore_threads):
    assert use_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert all(os.environ[name] == "1" for name in THREAD_VARIABLES)


def test_the_environment_is_read_in_order(restore_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert use_threads() == 1  # the user's OpenMP setting is kept
    monkeypatch.setenv("MICROSR_THREADS", "2")
    assert use_threads() == 2  # microsr's own variable comes first
    monkeypatch.setenv("MICROSR_THREADS", "two")
    with pytest.raises(InputError, match="MICROSR_THREADS"):
        use_threads()


def test_the_default_leaves_busy_cores_to_their_programs(restore_threads, monkeypatch):
    import microsr.threads as threads

    cores = usable_cores()
    assert 1 <= default_thread_count() <= cores
    busy = busy_cores(0.05)
    assert busy is None or 0 <= busy <= (os.cpu_count() or 1) + 1e-6
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.1)  # another job on one of two cores
    assert default_thread_count() == 1
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.2)
    assert default_thread_count() == 2
    monkeypatch.setattr(threads, "busy_cores", lambda: 5.0)  # never below one thread
    assert default_thread_count() == 1


def test_cli_threads_flag(restore_threads, capsys):
    code, out, _ = run_cli(["--threads", "1", "models"], capsys)
    assert code == 0 and "filaments-x4" in out and torch.get_num_threads() == 1
    code, _, err = run_cli(["--threads", "0", "models"], capsys)
    assert code == 2 and "--threads" in err
