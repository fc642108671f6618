"""The one declaration of the arrays a design point reaches compiled code in: the index of
every field of every per-point parameter, constant, state and meter array.

Each layout is a prefix, a length ``<PREFIX>_LEN`` and its fields ``<PREFIX>_<NAME>``,
numbered in order. Everything that reads or writes these arrays takes its indices from
here, by name:

- the Numba kernels (:mod:`kernels`, :mod:`int_kernels`) import the constants, which
  Numba compiles as literals;
- the Triton kernels (:mod:`gpu_kernels`) read them as ``tl.constexpr`` globals of the
  same names, ``X = tl.constexpr(layout.X)``, so no offset is written as a number there;
- the packers (:mod:`quant`, :mod:`marshal`, :mod:`batch`, :mod:`integer`) fill the
  arrays by the same names;
- the exported C (``export/c.py``) writes each integer constant ``KC_<NAME>`` as the
  macro ``TSNN_<NAME>`` of ``model.h`` (but those of :data:`KC_NOT_IN_C`).

tests/core/test_layout.py and tests/export/test_c_layout.py fail where one of them
disagrees. Numba's on-disk cache keys a kernel on its own file only, not on the constants
it imports, so :mod:`kernels` and :mod:`int_kernels` each hold the :func:`stamp` of the
layouts they were written against and refuse to load against another (:func:`require`):
changing a layout means editing that stamp there, which also retires their cached code.
"""

from __future__ import annotations

# a fixed-point format (quant.qparams), float64 [QP_LEN]: on (0: FP32), 1/eps, eps, the
# lowest and highest integer code, stochastic?, how far above floor(x / eps)
# deterministic rounding steps up (1/2 nearest, inf truncate), the largest float32 not
# above the format's ceiling, and whether float32 arithmetic is exact for the format (at
# most 23 bits and a step of at most 1: kernels.fxp_code32)
QP_LEN = 9
QP_ON, QP_INV, QP_EPS, QP_LO, QP_HI, QP_STOCH, QP_CUT, QP_HI32, QP_NARROW = range(QP_LEN)

# the formats of a design point, [F_LEN, QP_LEN]: weights, Vmem, Vth, threshold accumulator
F_LEN = 4
F_W, F_V, F_T, F_A = range(F_LEN)

# neuron state rows, float32 [S_LEN, N]
S_LEN = 8
S_V, S_REFR, S_THETA, S_COUNTS, S_IREC, S_INHV, S_INHREFR, S_SPREV = range(S_LEN)

# neuron and inhibition constants, float32 [C_LEN] (marshal.neuron_consts); KEEP: the share
# of the overshoot an excitatory spike keeps (step.reset_to; modes.Reset; the inhibitory
# layer resets to its value); FLOOR: the excitatory membrane floor, on the Vmem grid
C_LEN = 17
(C_V_REST, C_V_RESET, C_DECAY, C_REF, C_I_REST, C_I_RESET, C_I_DECAY, C_I_REF,
 C_V_TH, C_THETA_PLUS, C_W_LAT, C_W_EXC_INH, C_INH_THR, C_ONE_SPIKE,
 C_INHIB, C_KEEP, C_FLOOR) = range(C_LEN)  # fmt: skip

# hash keys of a presentation, int64 [K_LEN]: tie-breaks, threshold rounding, weight rounding
K_LEN = 3
K_TIE, K_VTH, K_W = range(K_LEN)

# a meter, float64 [M_LEN]: clipped Vmem roundings, lowest and highest potential seen (FP32
# runs with M_TRACK set, for the observed ranges), quantized threshold updates and how
# many clipped
M_LEN = 6
M_SAT, M_LO, M_HI, M_TUPD, M_TCLIP, M_TRACK = range(M_LEN)

# the tinySNN rule's learning parameters, float32 [LR_LEN] (a design batch: [K, LR_LEN]):
# eta, s_th, w_max and dt / tau_trace (marshal.tinysnn_rates)
LR_LEN = 4
LR_ETA, LR_S_TH, LR_W_MAX, LR_DT_TAU = range(LR_LEN)

# the per-step rules' learning parameters, float32 [SR_LEN] (marshal.stepwise_rates)
SR_LEN = 5
SR_ETA_PRE, SR_ETA_POST, SR_ETA_SL, SR_X_TAR, SR_W_MAX = range(SR_LEN)

# the integer datapath's constants (integer.IntDesign.consts; int64, or float64 where
# exact, int_kernels), in Vmem codes unless said: resting and reset potential, leak
# (D * 2**(k - LEAK_BITS)) and refractory steps of each layer, the recurrent weight
# (lateral, or inhibitory -> excitatory) and the excitatory -> inhibitory one, the
# inhibitory threshold, SH_W and 2**SH_W (weight codes to accumulator units), rest * 2**k
# of each layer, the nearest-rounding offset (2**(k-1), or 0), 2**-k (float64 state only),
# the stochastic comparison's factors (remainder * P2A > u * P2B), the Vmem format's
# lowest and highest code, the rounding (RoundMode.code), whether there is an inhibitory
# layer, k and 2**k, the excitatory reset's keep (as C_KEEP) and membrane floor (a code)
KC_LEN = 27
(KC_REST, KC_RESET, KC_DSH, KC_REF, KC_IREST, KC_IRESET, KC_IDSH, KC_IREF, KC_WREC,
 KC_WEI, KC_ITHR, KC_SH_W, KC_SCALE_W, KC_REST_K, KC_IREST_K, KC_HALF, KC_INV_K, KC_P2A,
 KC_P2B, KC_V_LO, KC_V_HI, KC_ROUNDING, KC_INHIBITORY, KC_K, KC_P2K,
 KC_KEEP, KC_FLOOR) = range(KC_LEN)  # fmt: skip

#: the integer constants ``model.h`` leaves out: 2**-k is a float64-state matter (0 in int64)
KC_NOT_IN_C = (KC_INV_K,)

#: every layout, by prefix
PREFIXES = ("QP", "F", "S", "C", "K", "M", "LR", "SR", "KC")


def fields(prefix: str) -> dict[str, int]:
    """The fields of layout ``prefix``, by name without the prefix, in index order
    (``fields("F")`` = {"W": 0, "V": 1, "T": 2, "A": 3})."""
    head = prefix + "_"
    out = {
        name[len(head) :]: v
        for name, v in globals().items()
        if name.startswith(head) and name != head + "LEN" and isinstance(v, int)
    }
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def length(prefix: str) -> int:
    """``<prefix>_LEN``."""
    n: int = globals()[prefix + "_LEN"]
    return n


def stamp() -> str:
    """A digest (FNV-1a, 32 bits, hex) of every layout's names and indices: it changes
    whenever a field is added, removed, renamed or moved."""
    text = ";".join(f"{p}:{length(p)}:" + ",".join(f"{k}={v}" for k, v in fields(p).items())
                    for p in PREFIXES)  # fmt: skip
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def require(seen: str, module: str) -> None:
    """Refuse ``module`` (a kernel module) written against layouts of stamp ``seen``: its
    compiled code, cached on disk by Numba, would read the old indices."""
    now = stamp()
    if seen != now:
        raise ImportError(
            f"core/layout.py changed (stamp {now}) since {module} was last edited (it holds "
            f"LAYOUT_STAMP = {seen!r}): check that {module} reads the fields it means, then set "
            f"its LAYOUT_STAMP = {now!r} (an edit of the file also retires Numba's cached code)"
        )


def _check() -> None:
    for p in PREFIXES:
        idx = list(fields(p).values())
        if idx != list(range(length(p))):
            raise AssertionError(f"layout {p}: fields {idx} are not 0..{length(p) - 1}")


_check()
