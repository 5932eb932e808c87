"""The base of every step's config: a frozen dataclass that pydantic validates when it is constructed.

    @config
    class TrainConfig:
        epochs: Annotated[int, Field(ge=1)] = 20
        optimizer: Literal["adam", "sgd"] = "adam"

Types, `Literal` choices and ranges are checked at construction (pydantic's lax mode: a list is taken for a tuple,
a dict for a nested config, "3" for 3; "x" for a number is refused), unknown keyword arguments are refused, and
cross-field rules raise ConfigError from `__post_init__`; any failure is a one-line ConfigError naming the class
and the field. `dataclasses.asdict` / `replace` work as on any dataclass (`replace`
validates again). Torch-free: the CLI builds configs before it imports a backend.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass

from edgerec.errors import ConfigError, shown

T = TypeVar("T")


def validation_message(e: ValidationError) -> str:
    """The first validation error as `field `a.b`: message; got value`."""
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    echo = "" if isinstance(got, dict) or err["type"] in ("missing", "missing_argument") else f"; got {shown(got)}"
    return f"field `{loc}`: {msg}{echo}"


@dataclass_transform(frozen_default=True, field_specifiers=(Field,))
def config(cls: type[T]) -> type[T]:
    validated: Any = dataclass(frozen=True, config=ConfigDict(extra="forbid", strict=False))(cls)
    init: Callable[..., None] = validated.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        names = [f.name for f in dataclasses.fields(validated)]
        if len(args) > len(names) or set(names[: len(args)]) & set(kwargs):
            raise ConfigError(f"{cls.__name__}: takes at most {len(names)} values, each once ({', '.join(names)})")
        try:  # positional values by name, so that an error names the field
            init(self, **dict(zip(names, args, strict=False)), **kwargs)
        except ValidationError as e:
            raise ConfigError(f"{cls.__name__}: {validation_message(e)}") from None

    validated.__init__ = __init__
    return validated
