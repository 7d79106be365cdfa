"""sonobridge.dsp: echo lines → B-mode and M-mode images. Imports only numpy and scipy.

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
from .doppler import (
    FlowEstimate,
    angle_correct,
    color_flow,
    ensemble_iq,
    kasai,
    kasai_velocity,
    lag_one_autocorrelation,
    loupas,
    mean_frequency_hz,
    nyquist_velocity_m_s,
    wrap_phase,
    wrap_velocity,
)
from .envelope import envelope
from .flow_colormap import flow_colormap, flow_rgba
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
from .scan_convert import ScanConverter, beam_coordinates, beam_xy
from .spectral import PwSpectrum, Spectrogram, pw_spectrogram, range_gate
from .tgc import apply_gain, auto_tgc_db, db_to_gain, tgc_gain_db
from .wall_filter import (
    iir_wall_design,
    iir_wall_filter,
    regression_matrix,
    regression_response,
    regression_wall_filter,
)

__all__ = [
    "BandPlan",
    "Chain",
    "ChainConfig",
    "ChainResult",
    "FlowEstimate",
    "MMode",
    "PwSpectrum",
    "ScanConverter",
    "Spectrogram",
    "analytic_iq",
    "angle_correct",
    "apply_gain",
    "auto_tgc_db",
    "axial_fwhm",
    "beam_coordinates",
    "beam_xy",
    "blank",
    "blanking_window",
    "cnr",
    "color_flow",
    "contrast_db",
    "db_to_gain",
    "ensemble_iq",
    "envelope",
    "envelope_percentile",
    "flow_colormap",
    "flow_rgba",
    "full_scale",
    "fwhm",
    "gcnr",
    "iir_wall_design",
    "iir_wall_filter",
    "kasai",
    "kasai_velocity",
    "lag_one_autocorrelation",
    "lateral_fwhm",
    "log_compress",
    "log_compress_levels",
    "loupas",
    "mean_frequency_hz",
    "nyquist_velocity_m_s",
    "peak_position",
    "persist",
    "pw_spectrogram",
    "quantize_levels",
    "range_gate",
    "regression_matrix",
    "regression_response",
    "regression_wall_filter",
    "remove_dc",
    "resolve_format",
    "speckle_snr",
    "tgc_gain_db",
    "to_full_scale",
    "track_reference",
    "wrap_phase",
    "wrap_velocity",
]
