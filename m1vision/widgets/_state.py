"""Explorer state as data (internal part): the explorers' base class and their kinds.

Every explorer is an :class:`Explorer` of one kind of :mod:`m1vision.views` view: its
``view()`` is the pure view of what it shows now, ``state()`` that view's state (JSON-able,
versioned) and ``from_state(state, image)`` builds the explorer of the kind the state names
(the class is looked up by the kind, as napari's layers are), in exactly that state.
``from_record`` does the same for a view kept by :func:`m1vision.experiment.record`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from m1vision._record import kept_view
from m1vision.errors import RecordError
from m1vision.views.state import View, upgrade_state


class Explorer:
    """Base of the explorers: state out, state back in, through the view of their kind.

    A subclass sets ``view_class`` (a :class:`m1vision.views.View` kind) and implements
    :meth:`view` and ``_from_view``; it is registered under that kind.
    """

    #: The pure view this explorer shows live.
    view_class: ClassVar[type[View]]
    _kinds: ClassVar[dict[str, type[Explorer]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        view_class = cls.__dict__.get("view_class")
        if view_class is not None:
            Explorer._kinds[view_class.kind] = cls

    def view(self) -> View:
        """The pure view of what the explorer shows now (no widget in it)."""
        raise NotImplementedError

    @classmethod
    def _from_view(cls, view: View, image) -> Explorer:
        raise NotImplementedError

    def state(self) -> dict:
        """The explorer's state as a JSON-able dict (``schema``, ``version``, ``kind``...).

        ``type(self).from_state(state, image)`` makes an explorer that shows the same
        pictures; see :mod:`m1vision.views.state`.
        """
        return self.view().state()

    @classmethod
    def from_state(cls, state: dict, image, **context: Any) -> Explorer:
        """The explorer ``state`` describes, showing ``image`` (an array or a MedicalImage).

        The class is the one of the state's kind; called on a subclass, the state must be
        of that subclass. ``context`` goes to the view (``func=`` for a function explorer).
        """
        state = upgrade_state(state)
        found = explorer_class(state["kind"])
        if not issubclass(found, cls):
            raise RecordError(
                f"the state is of a {found.__name__}, not a {cls.__name__}; restore it with "
                f"{found.__name__}.from_state (or from_record), or m1vision.widgets.from_record."
            )
        return found._from_view(found.view_class.from_state(state, image, **context), image)

    @classmethod
    def from_record(cls, record_path, index: int = 0) -> Explorer:
        """Restore the ``index``-th explorer view kept by ``experiment.record(explorers=...)``."""
        state, array, others = kept_view(record_path, index)
        return cls.from_state(state, array, **others)


def explorer_class(kind: str) -> type[Explorer]:
    """The explorer class that shows views of ``kind``."""
    import m1vision.widgets  # noqa: F401 - its modules register the explorers

    if kind not in Explorer._kinds:
        raise RecordError(
            f"unknown explorer kind {kind!r}; known kinds: {', '.join(sorted(Explorer._kinds))}."
        )
    return Explorer._kinds[kind]


def from_record(record_path, index: int = 0) -> Explorer:
    """Restore the ``index``-th explorer view kept in a record (see experiment.record).

    Returns the explorer of the view's kind (an :class:`EdgeExplorer`,
    :class:`TriPlanarExplorer`...) in exactly the state recorded (display it by ending a
    cell with it).
    """
    return Explorer.from_record(record_path, index)
