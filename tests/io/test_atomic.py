"""Atomic output: nothing is left by a failed, interrupted or killed writer, or the next write removes it."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from microsr.errors import InputError, OutputExistsError
from microsr.io import StackWriter, read_image, write_image
from microsr.io.atomic import (PartialOutput, atomic_write_bytes, atomic_write_text, check_writable,
                               is_stale_partial, remove_stale_partials, terminate_as_interrupt)

# A writer that streams a 500-frame stack slowly, so that it can be stopped in the middle.
SLOW_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from microsr.io.atomic import terminate_as_interrupt
    from microsr.io.stack import StackWriter

    if sys.argv[2] == "handled":
        terminate_as_interrupt()
    with StackWriter(sys.argv[1], (500, 128, 128), "float32") as out:
        for t in range(500):
            out.write(np.full((128, 128), t, np.float32))
            if t == 5:
                print("writing", flush=True)
            time.sleep(0.02)
""")


def dead_pid() -> int:
    """The id of a process that has just ended (ids are reused only after the counter wraps)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def start_slow_writer(output, mode):
    process = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(output), mode],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing", process.communicate()[1]
    return process


def partials(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


# --- check_writable creates nothing --------------------------------------------------------------

def test_check_writable_creates_no_folder(tmp_path):
    path = tmp_path / "new" / "deeper" / "out.tif"
    assert check_writable(path, overwrite=False) == path
    assert list(tmp_path.iterdir()) == []


def test_check_writable_refuses_a_file_on_the_way(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"notes.txt is a file, not a folder; choose another output path"):
        check_writable(tmp_path / "notes.txt" / "sub" / "out.tif", overwrite=True)


def test_check_writable_refuses_a_folder_without_write_permission(tmp_path, monkeypatch):
    # root may write anywhere, so the permission answer is simulated for the folder asked about
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(InputError, match=rf"no permission to write in the folder {tmp_path}"):
        check_writable(tmp_path / "new" / "out.tif", overwrite=False)


def test_check_writable_refuses_an_existing_output(tmp_path):
    (tmp_path / "out.tif").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        check_writable(tmp_path / "out.tif", overwrite=False)
    assert check_writable(tmp_path / "out.tif", overwrite=True) == tmp_path / "out.tif"


# --- writers create folders only when writing, and take them away on failure ---------------------

def test_writers_create_missing_folders(tmp_path):
    atomic_write_text(tmp_path / "a" / "b" / "notes.json", "{}\n")
    write_image(tmp_path / "c" / "img.zarr", np.ones((2, 8, 8), np.float32))
    assert (tmp_path / "a" / "b" / "notes.json").read_text() == "{}\n"
    np.testing.assert_array_equal(read_image(tmp_path / "c" / "img.zarr").array, np.ones((2, 8, 8)))
    assert partials(tmp_path / "a" / "b") == [] and partials(tmp_path / "c") == []


def test_failed_write_removes_the_folders_it_made(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "kept" / "new" / "deeper" / "out.bin", 42)  # not bytes
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]
    assert list((tmp_path / "kept").iterdir()) == []


@pytest.mark.parametrize("name", ["out.tif", "out.zarr"])
def test_failed_stack_removes_the_folders_it_made(tmp_path, name):
    with pytest.raises(RuntimeError, match="boom"):
        with StackWriter(tmp_path / "new" / name, (4, 8, 8)) as out:
            out.write(np.zeros((2, 8, 8), np.float32))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_stack_writer_creates_folders_only_when_entered(tmp_path):
    writer = StackWriter(tmp_path / "new" / "out.zarr", (1, 8, 8))
    assert list(tmp_path.iterdir()) == []
    with writer as out:
        out.write(np.ones((8, 8)))
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["out.zarr"]


# --- stale partials ------------------------------------------------------------------------------

def test_partial_name_carries_host_and_pid(tmp_path):
    with PartialOutput(tmp_path / "out.tif") as partial:
        host, pid, token = partial.temp.name[len(".out.tif."):-len(".partial")].split("-")
        assert int(pid) == os.getpid() and len(token) == 8 and host
        assert not is_stale_partial(partial.temp, tmp_path / "out.tif")
    assert list(tmp_path.iterdir()) == []  # not published: discarded


def test_rerun_removes_only_stale_partials(tmp_path):
    output = tmp_path / "out.zarr"
    live = PartialOutput(output, directory=True)  # this process is alive and still writing
    prefix, middle = live.temp.name[:-len(".partial")].rsplit(".", 1)
    host, _, token = middle.split("-")
    gone = dead_pid()
    stale_folder = tmp_path / f"{prefix}.{host}-{gone}-{token[::-1]}.partial"
    stale_folder.mkdir()
    (stale_folder / "zarr.json").write_text("{}")
    stale_old = tmp_path / f"{prefix}.{host}-{gone}-0123abcd.old.partial"
    stale_old.write_bytes(b"x")
    old_format = [tmp_path / ".out.zarr.k2_x9qzt.partial", tmp_path / ".out.zarr.0a1b2c3d.old.partial"]
    old_format[0].mkdir()
    old_format[1].write_bytes(b"x")
    kept = [
        live.temp,
        tmp_path / f"{prefix}.other_machine-{gone}-0123abcd.partial",  # its writer may live there
        tmp_path / ".out.zarr.partial",  # the resumable partial of microsr.pipelines.selfsup
        tmp_path / f".other.zarr.{host}-{gone}-0123abcd.partial",  # another output's
        tmp_path / f".out.zarr.more.{host}-{gone}-0123abcd.partial",  # the output "out.zarr.more"'s
        tmp_path / ".out.zarr.notes.partial",  # not a name microsr makes
    ]
    for path in kept[1:]:
        path.write_bytes(b"x")

    write_image(output, np.ones((2, 8, 8), np.float32), overwrite=True)

    assert sorted(partials(tmp_path)) == sorted(p.name for p in kept)
    np.testing.assert_array_equal(read_image(output).array, np.ones((2, 8, 8)))
    live.discard()
    assert remove_stale_partials(output) == []


def test_rerun_after_sigkill_removes_what_the_killed_writer_left(tmp_path):
    output = tmp_path / "out.tif"
    writer = start_slow_writer(output, "unhandled")
    writer.kill()
    writer.communicate(timeout=30)
    assert len(partials(tmp_path)) == 1 and not output.exists()  # SIGKILL runs no cleanup

    write_image(output, np.zeros((3, 8, 8), np.uint16))

    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


# --- SIGTERM runs the cleanups ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["out.tif", "out.zarr"])
def test_sigterm_leaves_no_partial(tmp_path, name):
    output = tmp_path / "results" / name
    writer = start_slow_writer(output, "handled")
    assert len(partials(output.parent)) == 1
    started = time.monotonic()
    writer.send_signal(signal.SIGTERM)
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode != 0
    assert "KeyboardInterrupt" in stderr and "SIGTERM" in stderr
    assert time.monotonic() - started < 5  # stopped at once, not after the remaining ~10 s of frames
    assert list(tmp_path.iterdir()) == []  # neither the partial nor the folder made for it


def test_sigterm_without_the_handler_leaves_the_partial(tmp_path):
    # Python's default: killed on the spot. This is what terminate_as_interrupt is for.
    output = tmp_path / "out.zarr"
    writer = start_slow_writer(output, "unhandled")
    writer.send_signal(signal.SIGTERM)
    writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGTERM
    assert len(partials(tmp_path)) == 1


def test_terminate_as_interrupt_raises_once_then_restores():
    previous = terminate_as_interrupt()
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts this at once
        assert signal.getsignal(signal.SIGTERM) == (signal.SIG_DFL if previous is None else previous)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
