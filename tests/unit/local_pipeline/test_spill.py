from __future__ import annotations

import os

from local_pipeline.spill import BodyFile


def test_bodies_come_back_as_written_in_any_order() -> None:
    bodies = BodyFile()
    written = [(bodies.put(body), body) for body in (b'{"a":1}', b"", "é\n".encode() * 1000, b"x" * 70_000)]
    for ref, body in reversed(written):
        assert bodies.get(ref) == body
    assert bodies.size == sum(len(body) for _, body in written)
    bodies.close()


def test_the_file_has_no_name_and_is_released_when_closed() -> None:
    bodies = BodyFile()
    descriptor = bodies._fd
    assert os.fstat(descriptor).st_nlink == 0  # unlinked at once: nothing is left behind in /tmp
    bodies.close()
    bodies.close()  # closing twice is harmless
    assert not bodies._finalizer.alive  # the descriptor was closed once
