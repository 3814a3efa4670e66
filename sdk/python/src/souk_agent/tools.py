"""The :func:`tool` decorator: a function whose every call during a run is recorded as a
``tool_call`` of the run in progress, declared once at module level.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar, Union, overload

from .context import _check_tool_name, _recording, current_context

__all__ = ["tool"]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def tool(name: F) -> F: ...


@overload
def tool(name: Optional[str] = None) -> Callable[[F], F]: ...


def tool(name: Union[str, Callable[..., Any], None] = None) -> Any:
    """Records every call of the decorated function as a ``tool_call`` (its arguments by
    parameter name, its return value as the result; an exception is recorded as
    ``{"error": {"type": ..., "message": ...}}`` and propagates).

    ``@tool("column-stats")`` names the tool; bare ``@tool`` uses the function's name with
    ``_`` turned into ``-``. Outside a run (e.g. in unit tests) the function is just called.
    """
    if callable(name):
        fn = name
        return _recording(fn, _check_tool_name(fn.__name__.replace("_", "-")), current_context)
    if name is not None:
        _check_tool_name(name)

    def decorate(fn: F) -> F:
        tool_name = name if name is not None else fn.__name__.replace("_", "-")
        return _recording(fn, _check_tool_name(tool_name), current_context)

    return decorate
