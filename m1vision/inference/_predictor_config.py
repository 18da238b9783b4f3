"""A Predictor's configuration as data: :meth:`to_config` and :meth:`from_config` (internal).

Experiment records store a Predictor this way and rebuild it to replay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from m1vision.errors import InvalidParameterError, InvalidTypeError

if TYPE_CHECKING:
    from m1vision.inference._predictor import Predictor


class PredictorConfig:
    """The configuration half of :class:`~m1vision.inference.Predictor`."""

    def to_config(self) -> dict:
        """This Predictor as JSON-safe data: :meth:`from_config` rebuilds an equal one.

        ``model`` is the file or folder the model was loaded from, ``preprocess`` the
        pipeline's dict; ``device`` and ``backend`` say where it ran (informational: a
        rebuilt Predictor selects its device again).

        Raises
        ------
        InvalidParameterError
            The Predictor was built from a model object (no file to reload), or its
            ``preprocess`` is a plain function (not a :class:`m1vision.pipeline.Pipeline`).

        Examples
        --------
        >>> import json, tempfile, pathlib, keras
        >>> from m1vision.inference import Predictor
        >>> inputs = keras.Input((8, 8, 1))
        >>> x = keras.layers.GlobalAveragePooling2D()(inputs)
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.keras"
        >>> keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(path)
        >>> config = Predictor(path, labels=["a", "b"], device="cpu").to_config()
        >>> Predictor.from_config(json.loads(json.dumps(config))).to_config() == config
        True
        """
        if self.model_path is None:
            raise InvalidParameterError(
                "this Predictor was built from a model object, so its configuration cannot "
                "name a file to reload; build it from the file: Predictor('model.keras', ...)."
            )
        preprocess = self.preprocess
        if preprocess is not None:
            from m1vision.pipeline import Pipeline

            if not isinstance(preprocess, Pipeline):
                raise InvalidParameterError(
                    f"preprocess is a plain function ({type(preprocess).__name__}), "
                    "which a configuration cannot store; express it as an "
                    "m1vision.pipeline.Pipeline."
                )
            preprocess = preprocess.to_dict()
        return {
            "model": str(self.model_path),
            "preprocess": preprocess,
            "batch_size": self.batch_size,
            "labels": None if self.labels is None else list(self.labels),
            "top_k": self.top_k,
            "from_logits": self.from_logits,
            "workers": self.workers if self._workers_given else None,
            "prefetch": self.prefetch,
            "executor": self.executor,
            "prepare_on": self.prepare_on,
            "device": self.device.name,
            "backend": self.device.backend,
        }

    @classmethod
    def from_config(cls, config: dict, *, model=None, device=None) -> Predictor:
        """A Predictor rebuilt from :meth:`to_config`'s data.

        Parameters
        ----------
        config : dict
            What :meth:`to_config` gave (``workers``, ``prefetch``, ``executor`` and
            ``prepare_on`` may be left out: their defaults).
        model : path, optional
            Load the model from here instead of ``config["model"]`` (a record moved to
            another folder).
        device : {"auto", "gpu", "cpu"} or DeviceChoice, optional
            Default: ``"cpu"`` if the configuration ran on a CPU, else ``"auto"``.

        Raises
        ------
        InvalidParameterError
            ``config`` is no dict, lacks a key, or has keys :meth:`to_config` does not write.
        """
        if not isinstance(config, dict):
            raise InvalidTypeError(
                f"config must be a dict (from to_config), got {type(config).__name__}. Fix: pass "
                "what Predictor.to_config() returns (json.loads of its saved text)."
            )
        required = {"model", "preprocess", "batch_size", "labels", "top_k", "from_logits"}
        known = required | {"workers", "prefetch", "executor", "prepare_on", "device", "backend"}
        missing, unknown = sorted(required - set(config)), sorted(set(config) - known)
        if missing or unknown:
            raise InvalidParameterError(
                f"config must hold the keys Predictor.to_config writes; missing {missing}, "
                f"unknown {unknown}. Rebuild it with Predictor.to_config()."
            )
        preprocess = config["preprocess"]
        if preprocess is not None:
            from m1vision.pipeline import Pipeline

            preprocess = Pipeline.from_dict(preprocess)
        if device is None:
            device = "cpu" if "cpu" in str(config.get("device") or "").lower() else "auto"
        return cls(
            config["model"] if model is None else model,
            preprocess=preprocess,
            batch_size=config["batch_size"],
            labels=config["labels"],
            top_k=config["top_k"],
            from_logits=config["from_logits"],
            workers=config.get("workers"),
            prefetch=config.get("prefetch", 2),
            executor=config.get("executor", "auto"),
            prepare_on=config.get("prepare_on", "auto"),
            device=device,
        )
