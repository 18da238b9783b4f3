"""Where the tests find the checkout and the bundled data: m1vision's documented roots.

``REPO`` is the source checkout m1vision is installed from in editable mode (``make install``;
``M1VISION_SOURCE_ROOT`` overrides it) and ``DATA`` the bundled data folder, both from
:mod:`m1vision._resources`: the tests use the roots the package uses, not their own location.
``TESTS`` is the checkout's tests folder (what a child process puts on ``sys.path`` to import
the ``*_support`` modules) and ``FIXTURES`` its committed fixture files: the one way a test
finds them (never through ``__file__``).
"""

from __future__ import annotations

from m1vision._resources import data_root, source_root

_root = source_root()
if _root is None:
    raise RuntimeError(
        "the tests run against an editable install of the checkout (make install does it); "
        "for another install set M1VISION_SOURCE_ROOT to the checkout."
    )
REPO = _root
DATA = data_root()
TESTS = REPO / "tests"
FIXTURES = TESTS / "fixtures"
