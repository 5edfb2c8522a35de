"""Plain-data specs of constructed objects, so checkpoints reload without pickled classes.

A spec has the same shape as a Lightning CLI / jsonargparse config entry::

    {"class_path": "lightning_pde.problems.burgers.Burgers", "init_args": {"nu": 0.0031831}}

Classes that derive from :class:`Configurable` record the arguments they were constructed with; `to_spec` turns such
an object (recursively) into a spec and `from_spec` builds it again. Checkpoints store specs, so
``PINN.load_from_checkpoint(path)`` needs no extra arguments and no unpickling of user classes.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any


class Configurable:
    """Mixin that records the outermost constructor call's arguments as ``self.init_args``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: Any, *args: Any, **kw: Any) -> None:
            if "_init_args" not in self.__dict__:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                recorded = {k: v for k, v in list(bound.arguments.items())[1:]
                            if signature.parameters[k].kind not in (inspect.Parameter.VAR_POSITIONAL,)}
                extra = recorded.pop(next((k for k, p in signature.parameters.items()
                                           if p.kind is inspect.Parameter.VAR_KEYWORD), ""), {})
                object.__setattr__(self, "_init_args", {**recorded, **extra})
            init(self, *args, **kw)

        cls.__init__ = recording_init  # type: ignore[method-assign]

    @property
    def init_args(self) -> dict[str, Any]:
        """The arguments this object was constructed with (defaults filled in)."""
        return dict(self.__dict__.get("_init_args", {}))


def class_path(obj_or_cls: Any) -> str:
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return f"{cls.__module__}.{cls.__qualname__}"


def to_spec(value: Any) -> Any:
    """Turn `value` into plain data: Configurable objects become specs, tuples lists, other containers recurse.

    Raises:
        TypeError: for an object that is neither plain data nor Configurable (it could not be rebuilt from a
            checkpoint without pickling).
    """
    if isinstance(value, Configurable):
        return {"class_path": class_path(value), "init_args": {k: to_spec(v) for k, v in value.init_args.items()}}
    if isinstance(value, dict):
        return {k: to_spec(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_spec(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint spec; derive it from "
                    "lightning_pde.spec.Configurable or pass plain data")


def is_spec(value: Any) -> bool:
    return isinstance(value, dict) and "class_path" in value


def buildable(cls: Any) -> bool:
    """Whether `cls` is a class meant to be built from a spec: a :class:`Configurable` or a class registered in a
    ``lightning_pde.*`` entry-point group (or a subclass of one). Calls nothing but ``issubclass``."""
    if not isinstance(cls, type):
        return False
    if issubclass(cls, Configurable):
        return True
    from lightning_pde import registry

    return any(issubclass(cls, registered) for registered in registry.registered_classes())


def import_class(path: str, base: type | None = None, admit: tuple[type, ...] = ()) -> type:
    """Import ``package.module.Class`` or resolve a short registered name such as ``Burgers``, for building.

    Specs come from configs and from checkpoints, and a checkpoint may come from anyone: only a class that
    :func:`buildable` admits (and, with `base`, a subclass of `base`) is returned, checked before anything is
    called, so a spec naming ``os.system`` or ``builtins.eval`` is refused. Importing the named module still runs
    that module's top-level code, as any import does; only installed or importable modules can be named.

    Args:
        path: dotted ``module.Class`` path, or a short registered name.
        base: if given, the class must also be a subclass of it (``pl.LightningModule`` for a checkpoint's module).
        admit: further base classes whose subclasses are admitted although not buildable (the CLI admits
            ``torch.optim.Optimizer`` for an optimizer factory, which jsonargparse builds).

    Raises:
        ValueError: when the path cannot be imported or names something that is not meant to be built from a spec.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f"class_path must be a non-empty string, got {path!r}")
    if "." not in path:
        from lightning_pde import registry

        cls = registry.find_class(path)
    else:
        module_name, _, name = path.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            cls = getattr(module, name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"cannot import class {path!r}: {error}") from error
    if not (buildable(cls) or (isinstance(cls, type) and admit and issubclass(cls, admit))):
        what = f"{class_path(cls)} is neither Configurable nor registered" if isinstance(cls, type) else (
            f"it is a {type(cls).__name__}, not a class")
        raise ValueError(f"refusing to build {path!r} from a spec: {what}; a spec may only build subclasses of "
                         f"lightning_pde.spec.Configurable and classes registered in a lightning_pde.* entry-point "
                         f"group")
    if base is not None and not issubclass(cls, base):
        raise ValueError(f"refusing to build {path!r} from a spec: expected a subclass of {class_path(base)}, "
                         f"got {class_path(cls)}")
    return cls


def from_spec(value: Any) -> Any:
    """Build the object a spec describes (recursively); plain data passes through unchanged.

    Every class in the spec is checked by :func:`import_class` before its constructor is called.

    Raises:
        ValueError: for a class that may not be built from a spec, or a malformed spec.
    """
    if is_spec(value):
        cls = import_class(value["class_path"])
        init_args = value.get("init_args") or {}
        if not isinstance(init_args, dict):
            raise ValueError(f"init_args of {value['class_path']!r} must be a mapping, got {init_args!r}")
        args = {k: from_spec(v) for k, v in init_args.items()}
        return cls(**args)
    if isinstance(value, list):
        return [from_spec(v) for v in value]
    return value
