"""Simulated ultrasound front end: phantom physics, receive chain and (board.py) the device side.

Physics lives in ``phantom`` (what is imaged, from TOML data files), ``acoustics`` (transducer,
pulse, beam, attenuation, the fast frame synthesizer) and ``adc`` (TGC curve, noise,
quantization, sample formats). See ``docs/sim.md``.
"""

from .acoustics import Acquisition, EchoSynth, Pulse, Transducer
from .adc import Adc, NoisePool, tgc_curve_db
from .phantom import (
    Inclusion,
    Layer,
    Moving,
    Phantom,
    PhantomError,
    Point,
    Speckle,
    Vessel,
    builtin_phantoms,
    load_phantom,
)

__all__ = [
    "Acquisition",
    "Adc",
    "EchoSynth",
    "Inclusion",
    "Layer",
    "Moving",
    "NoisePool",
    "Phantom",
    "PhantomError",
    "Point",
    "Pulse",
    "Speckle",
    "Transducer",
    "Vessel",
    "builtin_phantoms",
    "load_phantom",
    "tgc_curve_db",
]
