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
from fractions import Fraction
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
    """How every quantizer of a design point rounds (method.md section 4; :mod:`quant`).
    Each is data, :data:`ROUNDINGS`, that every path reads: the float kernels and the torch
    reference (``QP_STOCH``, ``QP_CUT``), the integer datapath and its C (the offset
    ``KC_HALF`` added before the floor shift, and whether to draw), so a new member of
    the same family is a line here and one there."""

    TRUNCATE = "truncate"
    NEAREST = "nearest"
    STOCHASTIC = "stochastic"

    @classmethod
    def what(cls) -> str:
        return "rounding"

    @property
    def stochastic(self) -> bool:
        """Whether the rounding steps up where the remainder exceeds a uniform draw."""
        return ROUNDINGS[self][0]

    @property
    def cut(self) -> Fraction | None:
        """Deterministic rounding: the remainder of ``x / eps`` (in [0, 1)) from which it
        steps up from the floor; None where it never does (truncation, stochastic)."""
        return ROUNDINGS[self][1]


#: every rounding as (stochastic, cut) (:attr:`RoundMode.stochastic`, :attr:`RoundMode.cut`)
ROUNDINGS: dict[RoundMode, tuple[bool, Fraction | None]] = {
    RoundMode.TRUNCATE: (False, None),
    RoundMode.NEAREST: (False, Fraction(1, 2)),  # ties step up
    RoundMode.STOCHASTIC: (True, None),
}


class Reset(Mode):
    """What a spike leaves in its neuron's potential (:func:`step.reset_to`): the reset
    potential plus :attr:`keep` times the overshoot above the threshold. Each is data,
    :data:`RESETS`, carried to every path as the constant ``C_KEEP`` / ``KC_KEEP``."""

    VALUE = "value"  # to v_reset (Diehl & Cook; tinySNN)

    @property
    def keep(self) -> int:
        """The share of the overshoot the reset keeps."""
        return RESETS[self]


#: every reset rule's :attr:`Reset.keep`
RESETS: dict[Reset, int] = {
    Reset.VALUE: 0,
}


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
