"""Training several networks at once, one thread each.

The members of an ensemble, or the seeds of a comparison, train
independently of one another. One training step uses the two cores badly:
its matrix products are a minority of its time, and BLAS's second thread
helps only them, while the rest (im2col copies, BatchNorm, pooling,
elementwise passes) runs on one core. Two trainings side by side, each
with BLAS on one thread, keep both cores busy (the Speed page has the
measurement). NumPy lets go of Python's lock (the GIL) while it works on
arrays, so threads are enough: no processes, no copying of the data.

``run_in_threads([job, ...])`` is ``[job() for job in jobs]``, computed
that way. Each job computes exactly what it would alone with BLAS on one
thread (nothing is shared between them but read-only arrays), so the
results do not depend on which thread ran which job, or when.
"""
import concurrent.futures
import contextvars
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import train


def run_in_threads(jobs, workers=2):
    """``[job() for job in jobs]``, ``workers`` jobs at a time, each in its
    own thread, with the BLAS library on one thread while they run.

    A job is a function of no arguments, such as
    ``functools.partial(fit, model, ...)``; jobs must not share a model, an
    optimiser or a random generator. Each thread sees the caller's NumPy
    error settings and context (so a live view started in a thread shows
    under the calling notebook cell). Ctrl-C stops every ``fit`` still
    running (each returns its history with ``stop_reason ==
    'interrupted'``), then raises ``KeyboardInterrupt``; an exception in a
    job is raised here once the others have finished.
    """
    jobs = list(jobs)
    if not all(callable(job) for job in jobs):
        raise TypeError("jobs must be functions of no arguments, e.g. "
                        "functools.partial(fit, model, ...)")
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    errors = np.geterr()          # np.errstate is per thread: pass it on

    def run(job, context):
        with np.errstate(**errors):
            return context.run(job)

    with train._blas().limit(limits=1), \
            ThreadPoolExecutor(min(workers, max(len(jobs), 1))) as pool:
        futures = [pool.submit(run, job, contextvars.copy_context())
                   for job in jobs]
        try:
            # Wait in short naps: a KeyboardInterrupt reaches the main
            # thread only between its Python steps.
            pending = futures
            while pending:
                _, pending = concurrent.futures.wait(pending, timeout=0.1)
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()          # the jobs not started yet
            train.interrupt_all.set()    # every running fit stops
            try:
                for future in futures:
                    if not future.cancelled():
                        future.exception()       # wait for it to stop
            finally:
                train.interrupt_all.clear()
            raise
