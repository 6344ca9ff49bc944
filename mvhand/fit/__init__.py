"""Hand-model fits: MANO (user-supplied model files) and a license-free kinematic hand.

``run_fit(hands3d, cfg)`` fits per hand over a whole sequence; ``save_fit`` writes the
outputs. Pure math lives in ``rotation``, ``mano``, ``kinematic``, ``models`` and ``solver``;
file I/O only in ``mano_io`` (reading the licensed model files) and ``output``.
"""

from mvhand.fit.fitting import FitConfig, FitResult, HandFit, run_fit

__all__ = ["FitConfig", "FitResult", "HandFit", "run_fit", "save_fit"]


def save_fit(*args, **kwargs):
    """See :func:`mvhand.fit.output.save_fit`."""
    from mvhand.fit.output import save_fit as _save_fit

    return _save_fit(*args, **kwargs)
