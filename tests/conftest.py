import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def supervisors():
    """Start clusters with ``supervisors.append(start(...))``; all are stopped afterwards,
    whether the test passed or failed."""
    started = []
    yield started
    for supervisor in started:
        supervisor.close()


@pytest.fixture
def window(qapp, tmp_path):
    """The real window over a real 3 + 3 cluster, on a qasync loop; ``window.run(coro)`` runs
    a coroutine on it (Qt keeps drawing meanwhile)."""
    yield from open_window(qapp, tmp_path)


def open_window(qapp, folder, size: tuple[int, int] = (1400, 900)):
    """What the ``window`` fixture yields, for fixtures of other scopes too."""
    import asyncio

    import qasync

    from gui.main_window import MainWindow, WindowOptions
    from tests.helpers import fast_timeouts, make_cluster
    from tests.test_window import until

    qapp.setQuitOnLastWindowClosed(False)  # as gui/app.py does: closing stops the cluster first
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    main = MainWindow(make_cluster(folder, catalogs=3, orders=3, timeouts=fast_timeouts()), WindowOptions(*size))
    session = main.session
    main.show()

    def run(coro, timeout: float = 60.0):
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    main.run = run
    try:
        main.start()
        run(until(lambda: main.ready, 90, "the cluster to start"))
        yield main
    finally:
        if not main.stopped.is_set():
            main.close()
            run(main.stopped.wait(), 30)
        session.supervisor.close()
        main.deleteLater()
        qapp.processEvents()
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
