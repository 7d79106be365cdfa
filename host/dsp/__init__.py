"""host.dsp: echo lines → B-mode and M-mode images. Imports only numpy and scipy.

Main entry points: ``ChainConfig``, ``Chain`` (whose ``process`` returns a ``ChainResult``),
``ScanConverter`` and ``MMode``. The steps are also exported as plain functions.
"""

from .analytic import BandPlan, analytic_iq
from .blanking import blank, blanking_window
from .chain import Chain, ChainResult
from .compress import (
    envelope_percentile,
    log_compress,
    log_compress_levels,
    quantize_levels,
    track_reference,
)
from .config import ChainConfig
from .convert import full_scale, resolve_format, to_full_scale
from .dc import remove_dc
from .envelope import envelope
from .metrics import (
    axial_fwhm,
    cnr,
    contrast_db,
    fwhm,
    gcnr,
    lateral_fwhm,
    peak_position,
    speckle_snr,
)
from .mmode import MMode
from .persistence import persist
from .scan_convert import ScanConverter
from .tgc import apply_gain, auto_tgc_db, db_to_gain, tgc_gain_db

__all__ = [
    "BandPlan",
    "Chain",
    "ChainConfig",
    "ChainResult",
    "MMode",
    "ScanConverter",
    "analytic_iq",
    "apply_gain",
    "auto_tgc_db",
    "axial_fwhm",
    "blank",
    "blanking_window",
    "cnr",
    "contrast_db",
    "db_to_gain",
    "envelope",
    "envelope_percentile",
    "full_scale",
    "fwhm",
    "gcnr",
    "lateral_fwhm",
    "log_compress",
    "log_compress_levels",
    "peak_position",
    "persist",
    "quantize_levels",
    "remove_dc",
    "resolve_format",
    "speckle_snr",
    "tgc_gain_db",
    "to_full_scale",
    "track_reference",
]
