"""The Qt binding survives the window's workload: many asyncio callbacks through qasync.

PySide6 6.12.0 on Python 3.11 drops a reference to None on this path and the process dies
("Fatal Python error: none_dealloc") within seconds of load; requirements.txt keeps it out.
The check runs in its own process, because a failure kills the interpreter."""
import subprocess
import sys
import textwrap

import pytest

STRESS = textwrap.dedent("""
    import asyncio, os
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import qasync
    from PySide6.QtWidgets import QApplication
    app = QApplication([])

    async def tick():
        await asyncio.sleep(0)

    async def main():
        for _ in range(400):
            await asyncio.gather(*(tick() for _ in range(500)))
        print("survived")

    qasync.run(main())
""")


@pytest.mark.timeout(120)
def test_two_hundred_thousand_callbacks_through_qasync_do_not_crash_the_interpreter():
    result = subprocess.run([sys.executable, "-c", STRESS], capture_output=True, text=True, timeout=110)
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]
