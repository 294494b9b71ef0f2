"""nnlib.parallel: trainings side by side in threads give what each gives
alone, and stop together on Ctrl-C."""
import _thread
import functools
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nnlib import models, optim, parallel, train
from nnlib.live import LiveBoard
from nnlib.losses import CrossEntropyLoss
from nnlib.train import Callback, fit


def small_cnn_job(seed, num_epochs=2, callbacks=()):
    """A job: chapter 4's CNN on random images (enough to exercise every
    layer), returning the model and its history."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((96, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=96)
    model = models.seed_cnn(rng=rng)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, CrossEntropyLoss(), optimizer, (X, y), (X, y),
                  num_epochs=num_epochs, batch_size=32, rng=rng,
                  callbacks=callbacks)
    return model, history


def weights(model):
    return [p.data for p in model.parameters()]


def test_threads_give_each_job_what_it_gives_alone():
    # The reference: the jobs one after another, BLAS on one thread (what
    # each thread has), so the arithmetic is the same, bit for bit.
    with threadpool_limits(1):
        alone = [small_cnn_job(seed) for seed in range(3)]
    together = parallel.run_in_threads(
        [functools.partial(small_cnn_job, seed) for seed in range(3)])
    for (m1, h1), (m2, h2) in zip(alone, together):
        assert h1.step_loss == h2.step_loss
        assert h1.val_acc == h2.val_acc
        for a, b in zip(weights(m1), weights(m2)):
            np.testing.assert_array_equal(a, b)


def test_results_come_back_in_the_order_of_the_jobs():
    def job(i):
        time.sleep(0.05 * (3 - i))       # the first job finishes last
        return i
    jobs = [functools.partial(job, i) for i in range(4)]
    assert parallel.run_in_threads(jobs, workers=4) == [0, 1, 2, 3]


def test_blas_is_on_one_thread_in_the_jobs_and_restored_after():
    before = train._blas_threads()
    seen = parallel.run_in_threads([train._blas_threads] * 2)
    assert seen == [1, 1]
    assert train._blas_threads() == before


def test_jobs_see_the_callers_errstate():
    def job():
        return np.geterr()["over"]
    with np.errstate(over="ignore"):
        assert parallel.run_in_threads([job, job]) == ["ignore", "ignore"]


def test_an_error_in_a_job_is_raised_after_the_others_finish():
    finished = []

    def slow():
        time.sleep(0.2)
        finished.append(True)

    def bad():
        raise ValueError("bad job")
    with pytest.raises(ValueError, match="bad job"):
        parallel.run_in_threads([slow, bad])
    assert finished == [True]


@pytest.mark.parametrize("jobs, workers, error", [
    ([1, 2], 2, TypeError), ([lambda: 1], 0, ValueError),
    ([lambda: 1], 1.5, ValueError)])
def test_bad_arguments_are_named(jobs, workers, error):
    with pytest.raises(error, match="jobs|workers"):
        parallel.run_in_threads(jobs, workers=workers)


def test_ctrl_c_stops_every_running_fit_and_raises(capsys):
    started = threading.Barrier(3)

    class Started(Callback):
        def on_train_begin(self, state):
            started.wait()

    def interrupt_main():          # what Ctrl-C does: KeyboardInterrupt
        started.wait()             # in the main thread, both fits running
        time.sleep(0.2)
        _thread.interrupt_main()

    histories = []

    def job(seed):
        model, history = small_cnn_job(seed, num_epochs=500,
                                       callbacks=[Started()])
        histories.append(history)
        return history
    threading.Thread(target=interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        parallel.run_in_threads([functools.partial(job, s) for s in (0, 1)])
    assert [h.stop_reason for h in histories] == ["interrupted"] * 2
    assert all(len(h.epoch) < 500 for h in histories)
    assert not train.interrupt_all.is_set()        # later fits run
    assert "training interrupted" in capsys.readouterr().err


def test_a_board_takes_runs_from_several_threads():
    board = LiveBoard("side by side", widgets=False)
    jobs = [functools.partial(small_cnn_job, seed,
                              callbacks=[board.run(f"seed {seed}")])
            for seed in range(3)]
    results = parallel.run_in_threads(jobs)
    board.close()
    assert [run.history for run in board.runs] == [h for _, h in results]
    assert all(len(run.train["x"]) > 0 for run in board.runs)
