"""The modes of a design point: its rounding, learning rule and topology, each an enum.

A mode enters as its user spelling (YAML, CLI, records, checkpoints) and is parsed once,
where the frozen spec that holds it is built (``QuantSpec.rounding``,
``ModelConfig.rule`` and ``ModelConfig.topology``, in ``__post_init__``; :meth:`Mode.of`).
Below that the code compares members, never strings. A member *is* its spelling (a
``str``), so ``dataclasses.asdict``, JSON, f-strings and records keep the exact text they
had when these fields were plain strings.

Compiled code takes a mode as a plain int, :attr:`Mode.code` (its declaration order),
through module constants derived from the member (``kernels.RULE_PAIR``,
``int_kernels.ROUND_STOCHASTIC``) or a flag in the constants it reads; the exported C
gets the codes as ``TSNN_ROUND_*`` macros of ``model.h``.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from tinysnn_dse.errors import ConfigError

_M = TypeVar("_M", bound="Mode")


class Mode(str, enum.Enum):
    """A mode: a ``str`` enum whose value is the user spelling; ``str()`` and ``format()``
    give that spelling (as ``enum.StrEnum``, which Python 3.10 lacks)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    @classmethod
    def what(cls) -> str:
        """What the mode is called in an error message."""
        return cls.__name__.lower()

    @classmethod
    def of(cls: type[_M], value: str) -> _M:
        """The member spelled ``value`` (a member passes through); a one-line
        :class:`ConfigError` naming the choices otherwise."""
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ConfigError(f"unknown {cls.what()} {value!r}; choose one of {choices}") from None

    @property
    def code(self) -> int:
        """The member's integer in compiled kernels and the exported C: its position in the
        declaration (new members go last)."""
        return list(type(self)).index(self)


class RoundMode(Mode):
    """How every quantizer of a design point rounds (method.md section 4; :mod:`quant`)."""

    TRUNCATE = "truncate"
    NEAREST = "nearest"
    STOCHASTIC = "stochastic"

    @classmethod
    def what(cls) -> str:
        return "rounding"


class Rule(Mode):
    """The learning rule of a model (method.md section 2)."""

    PAIR = "pair"
    SL_STDP = "sl-stdp"
    TINYSNN = "tinysnn"


class Topology(Mode):
    """How the excitatory layer inhibits itself: through a layer of inhibitory neurons
    (the baseline's) or directly (tinySNN's lateral inhibition)."""

    INHIBITORY = "inhibitory"
    LATERAL = "lateral"
