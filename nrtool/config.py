"""The one config base: presets, overrides, validation and (de)serialisation for every setting.

Every group of settings in nrtool (fitting, inr2vec, classifier, PointNet, garment network,
synthetic capture, frame filtering, and the systems to come) is a frozen dataclass deriving from
:class:`Config`. A subclass declares its fields (with ``help`` in the field metadata where a
command exposes them as options), what it is called in messages (``WHAT``) and its checks
(:meth:`Config.checks`); this base gives it

- ``with_overrides(**values)``: a validated copy, ``None`` meaning "keep", unknown names refused;
- ``validate()``: one line naming every impossible value;
- ``to_dict()`` / ``from_dict()``: plain JSON/``weights_only`` types (tuples become lists, nested
  configs dicts), tolerant of fields added later (missing keys take the default);

and :class:`Presets` names the ``tiny``/``small``/``paper`` instances of a config.
:func:`override_options` derives a command's ``--FIELD`` override options from the same
declaration, so a setting is declared once, not three times.

This module imports nothing heavy: a command can build and validate its settings, and reject a
bad option, before torch is imported.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from nrtool.errors import NrtoolError

C = TypeVar("C", bound="Config")


def option(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:  # noqa: A002 - the CLI word
    """A config field with the help text its command option shows."""
    metadata = {"help": help} if help else {}
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_tuple(annotation: Any) -> bool:
    return typing.get_origin(annotation) is tuple


def _strip_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _coerce(annotation: Any, value: Any) -> Any:
    """``value`` (as read from JSON or a command line) in the field's declared type."""
    if value is None:
        return None
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and hasattr(annotation, "from_dict"):
        # Nested configs, and other plain records that know their dict form (a ChArUco board).
        return value if isinstance(value, annotation) else annotation.from_dict(value)
    if _is_tuple(annotation):
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        if args:
            return tuple(_coerce(a, v) for a, v in zip(args, value))
        return tuple(value)
    if annotation in (int, float, str, bool) and not isinstance(value, annotation):
        if annotation is float and isinstance(value, int):
            return float(value)
        return annotation(value)
    return value


def _plain(value: Any) -> Any:
    """Plain JSON types: nested configs as dicts, tuples as lists."""
    if isinstance(value, Config) or (dataclasses.is_dataclass(value) and hasattr(value, "to_dict")):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of every settings dataclass (subclasses are ``@dataclass(frozen=True)``)."""

    #: What the settings are called in messages ("fit" -> "impossible fit settings: ...").
    WHAT: ClassVar[str] = "settings"
    #: Validate when constructed (settings built directly from options, with no preset step).
    VALIDATE_ON_INIT: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.VALIDATE_ON_INIT:
            self.validate()

    def checks(self) -> Mapping[str, bool]:
        """``{field: is its value possible}``; subclasses list what can be wrong."""
        return {}

    def validate(self) -> None:
        """Refuse impossible values in one line that names each of them."""
        bad = [name for name, ok in self.checks().items() if not ok]
        if bad:
            detail = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise NrtoolError(f"impossible {self.WHAT} settings: {detail}")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def with_overrides(self: C, **overrides: Any) -> C:
        """A validated copy with the given values replaced (``None`` means keep this one's)."""
        values = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(values) - set(self.field_names()))
        if unknown:
            raise NrtoolError(f"unknown {self.WHAT} settings: {', '.join(unknown)}")
        hints = _hints(type(self))
        try:
            values = {k: _coerce(hints[k], v) for k, v in values.items()}
        except (TypeError, ValueError) as exc:
            raise NrtoolError(f"impossible {self.WHAT} settings: {exc}") from None
        config = dataclasses.replace(self, **values)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data (loads with ``torch.load(weights_only=True)``, dumps to JSON)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """The config ``to_dict`` wrote; unknown keys are ignored, missing ones take the default
        (files written before a field existed still load)."""
        hints = _hints(cls)
        values = {k: _coerce(hints[k], v) for k, v in data.items() if k in hints and not k.isupper()}
        try:
            return cls(**values)
        except TypeError as exc:
            raise NrtoolError(f"incomplete {cls.WHAT} settings: {exc}") from None


class Presets(Generic[C]):
    """The named instances of one config (``tiny``, ``small``, ``paper``, ...)."""

    def __init__(self, **presets: C) -> None:
        self._presets = dict(presets)

    def __getitem__(self, name: str) -> C:
        try:
            return self._presets[name]
        except KeyError:
            raise NrtoolError(f"unknown preset {name!r}; choose one of {', '.join(self._presets)}") from None

    def __call__(self, name: str, **overrides: Any) -> C:
        """The preset ``name`` with ``overrides`` applied (``None`` values ignored), validated."""
        return self[name].with_overrides(**overrides)

    def __iter__(self):
        return iter(self._presets)

    def __contains__(self, name: object) -> bool:
        return name in self._presets

    def names(self) -> list[str]:
        return list(self._presets)

    def items(self):
        return self._presets.items()


def _option_type(annotation: Any) -> Any:
    """The type Typer parses for an override of a field declared as ``annotation``."""
    annotation = _strip_optional(annotation)
    if _is_tuple(annotation):
        args = typing.get_args(annotation)
        return typing.Optional[list[args[0]]]  # one --NAME per element
    return typing.Optional[annotation]


def override_options(config: type[Config], names: Iterable[str], into: str = "overrides",
                     flags: Mapping[str, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a Typer command: add one ``--NAME`` option per config field in ``names``.

    The options take their type and help from the field's declaration; the command receives
    them as one dict ``into`` (``None`` for options not given), ready for
    :meth:`Config.with_overrides`. ``flags`` renames an option (``{"hidden": "--hidden"}``).
    """
    import typer

    names = list(names)
    hints = _hints(config)
    by_name = {f.name: f for f in dataclasses.fields(config)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise TypeError(f"{config.__name__} has no fields {unknown}")

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        kept = [p for p in signature.parameters.values() if p.name != into]
        hints_of_command = typing.get_type_hints(command)
        added = []
        annotations = {k: v for k, v in hints_of_command.items() if k != into}
        for name in names:
            field = by_name[name]
            help_text = field.metadata.get("help") or f"Override: {name.replace('_', ' ')}."
            flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
            annotation = _option_type(hints[name])
            added.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                           default=typer.Option(None, flag, help=help_text), annotation=annotation))
            annotations[name] = annotation

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            overrides = {name: kwargs.pop(name) for name in names}
            overrides = {k: (v if not isinstance(v, list) or v else None) for k, v in overrides.items()}
            return command(*args, **kwargs, **{into: overrides})

        # Options keep their declared order: the command's own, then the overrides.
        positional = [p for p in kept if p.kind != inspect.Parameter.KEYWORD_ONLY]
        keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept if p.kind == inspect.Parameter.KEYWORD_ONLY]
        wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = annotations
        del wrapper.__wrapped__  # Typer must read the new signature, not the command's
        return wrapper

    return decorate


__all__ = ["Config", "Presets", "option", "override_options"]
