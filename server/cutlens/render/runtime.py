"""Runtime variant parameters as templates see them while rendering (``[variants.runtime]``):
the C argument's name, never the value."""

from __future__ import annotations

from typing import Any

from cutlens.render.hooks import HookError
from cutlens.template.model import RuntimeParam


class RuntimeArg:
    """A runtime variant parameter as templates see it: its value is passed when the kernel
    is called, so it renders as the C argument's name (``{{ swizzle }}`` -> ``swizzle``),
    and anything that would need the value while rendering (a comparison, ``if``, a dict
    lookup, arithmetic) is an error on that line: the rendered source must not depend on it.
    ``{% if swizzle is runtime %}`` tells it from a compile-time value."""

    __slots__ = ("param",)

    def __init__(self, param: RuntimeParam) -> None:
        self.param = param

    def __str__(self) -> str:
        return self.param.name

    def __repr__(self) -> str:
        return self.param.name

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise HookError(
            f"{self.param.key!r} is a runtime argument ([variants.runtime]): its value is "
            f"passed when the kernel is called, so the template cannot use it while "
            f"rendering; use it as a C++ expression, {{{{ {self.param.key} }}}} "
            f"(-> {self.param.name}), or make it a compile-time key")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __bool__ = __int__ = __float__ = __index__ = __len__ = __iter__ = _refuse
    __hash__ = __getitem__ = __contains__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __floordiv__ = __mod__ = __neg__ = _refuse


def is_runtime(value: Any) -> bool:
    """The ``runtime`` test of templates: ``{% if raster is runtime %}``."""
    return isinstance(value, RuntimeArg)
