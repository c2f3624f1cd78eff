"""Many input files through one command: in this process or on Dask workers, each failure reported, the rest go on.

A command's per-file function (``task(input, output, **options) -> summary``, importable, so that Dask
can send it to a worker by name) runs once per input. :func:`plan_jobs` turns what the user typed (files,
globs, folders) into ``(input, output)`` pairs; :func:`run_batch` runs them — one after another here, or
on a ``dask.distributed`` LocalCluster of ``workers`` processes, or on an existing cluster — and returns
one :class:`BatchItem` per input: done (with the task's summary and the warnings it raised), skipped (its
output is already there: outputs are written atomically, so an existing one is complete) or failed
(with the one-line reason). Dask's own scheduler does the distribution; only the bookkeeping is here.
"""

from __future__ import annotations

import glob
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from microsr.errors import InputError, MicrosrError
from microsr.io.images import image_format

#: What a folder given as input contributes: the images in it (a ``.zarr`` folder is one image).
IMAGE_SUFFIXES = (".tif", ".tiff", ".mrc", ".zarr", ".npy")


@dataclass
class BatchItem:
    """What became of one input."""
    input: str
    output: str
    status: str  #: "done", "skipped" (output already complete) or "failed"
    seconds: float = 0.0
    summary: dict | None = None  #: the task's own summary (done only)
    error: str | None = None  #: one line (failed only)
    warnings: list = field(default_factory=list)  #: what the task warned, as one line each

    def as_dict(self) -> dict:
        return asdict(self)


def expand_inputs(inputs, *, folders_are_inputs: bool = False) -> list[Path]:
    """Files as given, globs expanded, folders replaced by the images in them (sorted); at least one.

    A ``.zarr`` folder is one image, not a folder to look into; with ``folders_are_inputs`` every folder is
    one input (a stack stored as a folder of TIFF volumes).
    """
    found: list[Path] = []
    for given in inputs:
        text = str(given)
        if any(char in text for char in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text))
            if not matches:
                raise InputError(f"{text} matches no file: check the pattern (quote it so the shell leaves it to microsr)")
            found += matches
            continue
        path = Path(text)
        if path.is_dir() and not folders_are_inputs and not text.lower().rstrip("/\\").endswith(".zarr"):
            images = sorted(p for p in path.iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES)
                            and not p.name.startswith("."))
            if not images:
                raise InputError(f"{path} holds no image ({', '.join(IMAGE_SUFFIXES)}): give files or another folder")
            found += images
        else:
            found.append(path)
    if len({p.resolve() for p in found}) != len(found):
        raise InputError("an input is given twice (files, globs and folders overlap): give each once")
    return found


def batch_output(source: Path, folder: Path, suffix: str | None = None) -> Path:
    """Where ``source``'s result goes in a batch: ``folder/<stem>.tif`` (``.zarr`` for a Zarr input; ``suffix``
    for every input when given).

    Examples
    --------
    >>> batch_output(Path("data/cell1.ome.tif"), Path("out")).as_posix()
    'out/cell1.tif'
    >>> batch_output(Path("data/movie.zarr"), Path("out")).as_posix()
    'out/movie.zarr'
    """
    name = source.name
    for known in (".ome.tiff", ".ome.tif") + IMAGE_SUFFIXES:
        if name.lower().endswith(known):
            name = name[:-len(known)]
            break
    if suffix:
        return folder / (name + suffix)
    return folder / (name + (".zarr" if image_format(source) == "zarr" else ".tif"))


def plan_jobs(inputs, output: str | Path, *, folders_are_inputs: bool = False,
              suffix: str | None = None) -> tuple[list[tuple[Path, Path]], bool]:
    """``([(input, output), …], single)``: one file in → ``output`` is that file's output (``single``);
    several, a glob or a folder → ``output`` is a folder, each result named by :func:`batch_output`
    (``suffix``: the outputs' for all). ``folders_are_inputs``: a folder is one input (see :func:`expand_inputs`)."""
    inputs = list(inputs)
    single = len(inputs) == 1 and not any(c in str(inputs[0]) for c in "*?[") and (folders_are_inputs or not (
        Path(inputs[0]).is_dir() and not str(inputs[0]).lower().rstrip("/\\").endswith(".zarr")))
    if single:
        return [(Path(inputs[0]), Path(output))], True
    sources = expand_inputs(inputs, folders_are_inputs=folders_are_inputs)
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file: with several inputs, -o names a folder for their outputs")
    if folder.name.lower().endswith((".tif", ".tiff", ".zarr", ".mrc", ".npy")) and not folder.is_dir():
        raise InputError(f"-o {folder} looks like a file name: with several inputs, -o names a folder")
    jobs = [(source, batch_output(source, folder, suffix)) for source in sources]
    names = [target.name for _, target in jobs]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise InputError(f"several inputs would write {clashes[0]} in {folder}: rename them or run them separately")
    return jobs, False


def run_one(task: Callable, source: str, target: str, options: dict, threads: int | None = None) -> BatchItem:
    """Run ``task`` on one file and say what became of it; never raises for a bad file (a bug's message
    names its type, so it is not mistaken for the file's fault)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            summary = task(source, target, **options)
            status, error = "done", None
        except MicrosrError as exc:
            summary, status, error = None, "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 — one file's crash must not stop the others
            summary, status, error = None, "failed", f"{exc.__class__.__name__}: {exc}"
    said = list(dict.fromkeys(str(w.message) for w in caught))
    return BatchItem(str(source), str(target), status, round(time.perf_counter() - start, 2), summary, error, said)


def run_batch(task: Callable, jobs: list[tuple[Path, Path]], *, workers: int = 1, scheduler: str | None = None,
              overwrite: bool = False, show_progress: bool = True, **options) -> list[BatchItem]:
    """Run ``task(input, output, overwrite=…, progress=False, **options)`` for every job (a bar per file would be
    noise: one bar counts the files); one :class:`BatchItem` per job, in order.

    Parameters
    ----------
    task : callable
        Importable per-file function returning a summary dict.
    jobs : list of (Path, Path)
        Inputs and their outputs (:func:`plan_jobs`).
    workers : int
        Processes on a local Dask cluster; 1 runs here, one file after another.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``): the files go to its workers instead.
    overwrite : bool
        Redo jobs whose output exists; otherwise they are skipped (a rerun finishes what is left).
    """
    if workers < 1:
        raise InputError(f"--workers {workers}: give 1 or more")
    items: dict[int, BatchItem] = {}
    todo = []
    for index, (source, target) in enumerate(jobs):
        if Path(target).exists() and not overwrite:
            items[index] = BatchItem(str(source), str(target), "skipped")
        else:
            todo.append(index)
    options = {**options, "overwrite": overwrite, "progress": False}
    bar = tqdm(total=len(todo), unit="file", desc="files", disable=not show_progress)
    if todo and (scheduler or workers > 1):
        from distributed import Client, LocalCluster, as_completed

        # One thread per worker process and the cores shared out among them: torch's own threads in several
        # processes at once would oversubscribe the machine.
        threads = max(1, (os.cpu_count() or 1) // workers) if not scheduler else None
        cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                      dashboard_address=None)
        try:
            with Client(scheduler or cluster) as client:
                futures = {client.submit(run_one, task, str(jobs[i][0]), str(jobs[i][1]), options, threads,
                                         pure=False): i for i in todo}
                for future in as_completed(futures):
                    index = futures[future]
                    try:
                        items[index] = future.result()
                    except Exception as exc:  # noqa: BLE001 — a worker lost (killed, out of memory)
                        items[index] = BatchItem(str(jobs[index][0]), str(jobs[index][1]), "failed",
                                                 error=f"the worker running it was lost ({exc.__class__.__name__})")
                    bar.update()
        finally:
            if cluster is not None:
                cluster.close()
    else:
        for index in todo:
            items[index] = run_one(task, str(jobs[index][0]), str(jobs[index][1]), options)
            bar.update()
    bar.close()
    return [items[index] for index in range(len(jobs))]


def batch_table(items: list[BatchItem]) -> str:
    """The end-of-run table a person reads: one row per input with its status, time and what was said.

    Examples
    --------
    >>> print(batch_table([BatchItem("a.tif", "out/a.tif", "done", 1.5), BatchItem("b.tif", "out/b.tif", "failed",
    ...                                                                          error="b.tif is empty")]))
    input  status  seconds  note
    a.tif  done        1.5
    b.tif  failed      0.0  b.tif is empty
    2 files: 1 done, 0 skipped, 1 failed
    """
    rows = [(item.input, item.status, f"{item.seconds:.1f}", item.error or "; ".join(item.warnings)) for item in items]
    widths = [max(len(header), *(len(row[column]) for row in rows)) for column, header in
              enumerate(("input", "status", "seconds"))]
    lines = [f"{'input':<{widths[0]}}  {'status':<{widths[1]}}  {'seconds':>{widths[2]}}  note".rstrip()]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}".rstrip() for a, b, c, d in rows]
    counts = {status: sum(item.status == status for item in items) for status in ("done", "skipped", "failed")}
    lines.append(f"{len(items)} files: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed")
    return "\n".join(lines)
