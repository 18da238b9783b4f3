"""A view's state as data: the base class of the pure views and the registry of their kinds.

A *view* is what an explorer shows, computed without any widget: an image plus a state.
Its :meth:`View.state` is a JSON-able dict::

    {"schema": "m1vision.view", "version": 1, "kind": "TriPlanarExplorer",
     "params": {...}, "geometry": {...}}

``kind`` names the view (and the explorer that shows it live); every other key is a *part*
of the state, owned by the kind: ``"params"`` (its settings dataclass as a dict) and
whatever else that kind needs (``"pipeline"``, ``"geometry"``...). A kind lists its parts in
``PARTS``; a new part (an overlay, say) is one more entry there and one more argument of
that kind's ``_from_parts`` (and an array it needs one more entry of its ``arrays()``):
nothing here changes. A kind whose parts change upgrades older states itself
(:meth:`View.upgrade_parts`). :meth:`View.from_state` picks the class by
the kind name (no switch over a list of classes), refuses parts it does not know (a state
written by a newer m1vision) and upgrades older versions of the state first.

The explorers of :mod:`m1vision.widgets` own the same ``state()`` / ``from_state()`` and
delegate to the view of their kind, so a recorded explorer is recomputed here, without
ipywidgets.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np

from m1vision._atomic import check_versioned, versioned
from m1vision.errors import InvalidTypeError, RecordError

__all__ = ["STATE_SCHEMA", "STATE_VERSION", "View", "upgrade_state", "view_class", "view_kinds"]

STATE_SCHEMA = "m1vision.view"
#: The version of the state this m1vision writes.
STATE_VERSION = 1
_HEADER = ("schema", "version", "kind")


#: The oldest version read: 0, the explorer states of the first records (no schema, no
#: version), is upgraded by each kind's :meth:`View.upgrade_parts`.
_OLDEST = 0


def upgrade_state(state) -> dict:
    """``state`` checked and upgraded to :data:`STATE_VERSION` (a new dict).

    A state without ``schema`` and ``version`` is the version 0 of the first records.

    Raises
    ------
    RecordError
        Not a dict, another schema, or a version this m1vision cannot read (newer ones
        are named as such), by the one check of versioned files (``m1vision._atomic``).

    Examples
    --------
    >>> from m1vision.views.state import upgrade_state
    >>> old = {"kind": "EdgeExplorer", "params": {"low": 10.0, "high": 20.0}, "pipeline": None}
    >>> upgrade_state(old)  # doctest: +NORMALIZE_WHITESPACE
    {'schema': 'm1vision.view', 'version': 1, 'kind': 'EdgeExplorer',
     'params': {'low': 10.0, 'high': 20.0}, 'pipeline': None}
    """
    if not isinstance(state, dict):
        raise RecordError(
            f"a view state must be a dict (an explorer's state()), got {type(state).__name__}."
        )
    state = copy.deepcopy(state)
    if "schema" not in state and "version" not in state:
        state.update(schema=STATE_SCHEMA, version=0)
    check_versioned(
        state,
        schema=STATE_SCHEMA,
        versions=range(_OLDEST, STATE_VERSION + 1),
        source="the view state",
        error=RecordError,
    )
    if "kind" not in state:
        raise RecordError(f"the view state names no kind; known kinds: {', '.join(view_kinds())}.")
    if state["version"] < STATE_VERSION:  # each kind upgrades its own parts
        parts = {k: v for k, v in state.items() if k not in _HEADER}
        parts = view_class(state["kind"]).upgrade_parts(parts, state["version"])
        state = versioned(STATE_SCHEMA, STATE_VERSION, {"kind": state["kind"], **parts})
    return state


class View:
    """Base of the pure views: an image and a state, and the pictures they make.

    A subclass names its kind (``class TriPlanarView(View, kind="TriPlanarExplorer")``),
    lists its ``PARTS`` and implements :meth:`parts`, :meth:`_from_parts`, :meth:`pictures`
    and the :attr:`array` it shows. The base owns the header, the versions and the lookup
    of a kind by name.
    """

    #: The kind's name, as written in its states.
    kind: ClassVar[str] = ""
    #: The names of the parts of this kind's state besides the header.
    PARTS: ClassVar[tuple[str, ...]] = ()
    _kinds: ClassVar[dict[str, type[View]]] = {}

    def __init_subclass__(cls, *, kind: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            if kind in View._kinds and View._kinds[kind] is not cls:
                raise InvalidTypeError(f"the view kind {kind!r} is taken by {View._kinds[kind]}.")
            cls.kind = kind
            View._kinds[kind] = cls

    # -- what a kind implements -----------------------------------------------------------
    def parts(self) -> dict[str, Any]:
        """The JSON-able parts of the state (``{"params": ..., ...}``)."""
        raise NotImplementedError

    @classmethod
    def _from_parts(cls, parts: dict[str, Any], image) -> View:
        """The view of ``image`` that ``parts`` (checked against ``PARTS``) describe."""
        raise NotImplementedError

    def pictures(self) -> list[np.ndarray]:
        """The pictures the view shows (``uint8``), in a fixed order."""
        raise NotImplementedError

    @classmethod
    def upgrade_parts(cls, parts: dict[str, Any], version: int) -> dict[str, Any]:
        """The parts of a state of an older ``version``, as this version writes them.

        The same by default; a kind whose parts changed overrides it.
        """
        return parts

    @property
    def array(self) -> np.ndarray:
        """The array the view shows (what a record keeps beside the state)."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays besides :attr:`array` that the state needs (a label map, say), by the name
        ``from_state`` takes each as a keyword; a record keeps them too. None here."""
        return {}

    # -- the base -------------------------------------------------------------------------
    def state(self) -> dict:
        """The state as a JSON-able dict: the header and :meth:`parts`."""
        return versioned(STATE_SCHEMA, STATE_VERSION, {"kind": self.kind, **self.parts()})

    @classmethod
    def from_state(cls, state: dict, image, **context: Any) -> View:
        """The view ``state`` describes, of ``image``; the class is picked by the kind.

        Called on a subclass, the kind must be that subclass (or one of its own).
        ``context`` is what a kind needs besides the state and the image (the function of
        a function view), passed on to its ``_from_parts``.
        """
        state = upgrade_state(state)
        found = view_class(state["kind"])
        if not issubclass(found, cls):
            raise RecordError(
                f"the state is of kind {found.kind!r}, not a {cls.kind or cls.__name__}; "
                f"restore it with {found.__name__}.from_state or View.from_state."
            )
        parts = {k: v for k, v in state.items() if k not in _HEADER}
        unknown = set(parts) - set(found.PARTS)
        if unknown:
            raise RecordError(
                f"the {found.kind} state holds part(s) {sorted(unknown)} this m1vision does "
                f"not know (it knows {list(found.PARTS)}); it was written by a newer "
                "m1vision: upgrade to restore it."
            )
        return found._from_parts(parts, image, **context)

    def picture(self) -> np.ndarray:
        """The view's static picture: its pictures side by side (one: itself)."""
        from m1vision.views.png import side_by_side_picture

        return side_by_side_picture(self.pictures())


def view_class(kind: str) -> type[View]:
    """The view class registered under ``kind`` (its module is imported on first use).

    Examples
    --------
    >>> from m1vision.views import view_class
    >>> view_class("WindowExplorer").__name__
    'WindowView'
    """
    _load_kinds()
    if not isinstance(kind, str) or kind not in View._kinds:
        raise RecordError(
            f"unknown view kind {kind!r}; known kinds: {', '.join(view_kinds())}. Fix: pass "
            'one of those, as a record\'s view holds it under "kind".'
        )
    return View._kinds[kind]


def view_kinds() -> list[str]:
    """The names of the known view kinds.

    Examples
    --------
    >>> from m1vision.views.state import view_kinds
    >>> view_kinds()
    ['EdgeExplorer', 'FunctionExplorer', 'TriPlanarExplorer', 'VolumeExplorer', 'WindowExplorer']
    """
    _load_kinds()
    return sorted(View._kinds)


def _load_kinds() -> None:
    pass  # its modules register the kinds of this package
