"""``TrainConfig``: every setting of a training run, frozen, validated, with named presets.

Presets (``TrainConfig.preset(name, model=...)``)
-------------------------------------------------
``paper``
    The paper's protocol (Sec. 2.5): 2 x 340 x 1536 scalograms (``ScalogramConfig.preset("paper")``),
    mini-batch 30, learning rate 1e-5, validation every 10 iterations, 10,000 noiseless signals
    split 80/20, early stopping on the validation loss, the paper's plain conv + ReLU blocks
    (``norm="none"``). The paper trained in MATLAB and does not name its solver; we use Adam:
    MATLAB's default SGD with momentum would barely move at a learning rate of 1e-5, while Adam's
    per-parameter steps are of the order of the learning rate, which makes 1e-5 a workable rate.
    Meant for a GPU.
``cpu``
    The same 10,000-signal protocol (fixed set, 80/20) at the reduced scalogram size
    (``ScalogramConfig.preset("cpu")``, 2 x 128 x 384). Widths 8-16-32-32-64-64, batch 32,
    Adam at 1e-3 decayed to 0 by a cosine over 6 epochs, validation once per epoch (every
    250 iterations), early stopping after 3 validations without improvement, and a wall-clock
    cap of 690 s per model so that both models train and are evaluated within 30 minutes on 2
    cores whatever the machine's speed.
``quick``
    2 x 64 x 192 scalograms, 4,000 + 500 signals, 5 epochs, otherwise as ``cpu``, capped at
    100 s per model: ``scaloquant reproduce --preset quick`` in under 5 minutes.
``tiny``
    For CI: 2 x 64 x 96 scalograms, 2,048 + 256 signals, 4 epochs at a constant 2e-3.

Both models of a preset share every setting but the model kind, so that they are compared on the
same data, budget and optimiser.

How the ``cpu``/``quick``/``tiny`` values were chosen (2 shared cores, 1000 noiseless test signals)
-------------------------------------------------------------------------------------------------
* Width: a training step of the scalogram CNN at 2 x 128 x 384 cost 19 ms of CPU per signal with
  widths 8-16-32-32-64-64 and 54 ms with 16-32-64-64-128-128 (the scalogram itself 1.5 ms): only
  the narrower network fits several epochs of 8,000 signals into ~12 minutes.
* Learning rate (scalogram CNN, 3 epochs): Adam at a constant 1e-3 reached test RMSE 0.144,
  2e-3 with a cosine 0.152; 1e-3 with a cosine over 6 epochs reached the values below.
* Per-row input standardisation (see :mod:`scaloquant.models.quantifier`) instead of per-channel
  lowered the scalogram CNN's validation RMSE from 0.222 to 0.213 in the ``tiny`` setting.
* Measured with the presets as set here (2 otherwise idle cores, seed 0, RMSE of the amplitudes
  over the 21 outputs on 1000 held-out noiseless signals; the paper's validation loss of 0.23 in
  MATLAB's half-MSE summed over 21 outputs is an RMSE of about 0.148):

  ======  =============  ============================  ============================
  preset  input          scalogram CNN                 spectrum CNN
  ======  =============  ============================  ============================
  cpu     2 x 128 x 384  RMSE 0.1154, 616 s training   RMSE 0.1019, 48 s training
  quick   2 x 64 x 192   RMSE 0.1541, 47 s             RMSE 0.1340, < 100 s
  tiny    2 x 64 x 96    RMSE 0.217 (mean pred. 0.289) RMSE 0.162
  ======  =============  ============================  ============================

  Validation RMSE of the ``cpu`` scalogram CNN after epochs 1-6: 0.175, 0.150, 0.138, 0.123,
  0.117, 0.115. The spectrum CNN trains 13 times faster here and ends more accurate: at equal
  data, epochs and optimiser we do not reproduce the paper's advantage of the scalogram.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from .._config import dataclass_from_dict, positive_number, true_or_false, whole_number
from ..errors import ConfigError
from ..models.cnn import DEFAULT_KERNEL_SIZE, DEFAULT_WIDTHS, Norm
from ..models.quantifier import InputScale, QuantifierConfig
from ..presets import MODEL_KINDS, PRESETS, UNCERTAINTY_KINDS, ModelKind, PresetName, Uncertainty
from ..scalogram import ScalogramConfig
from ..simulate import SimulationConfig
from ..types import BasisSet

Optimizer = Literal["adam", "adamw", "sgdm"]
LrSchedule = Literal["constant", "cosine"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (one model).

    Model
        ``model``, ``widths``, ``kernel_sizes``, ``norm``, ``input_scale``, ``spectrum_n_points``
        (None: the whole FID), ``spectrum_ppm_range`` (None: no crop), ``uncertainty``
        (``gaussian``, the default also of every preset: a log-variance head that leaves the
        amplitudes unchanged; ``none``): see :class:`scaloquant.models.QuantifierConfig`.
    Optimisation
        ``batch_size``, ``learning_rate``, ``optimizer`` (``adam`` | ``adamw`` | ``sgdm``:
        momentum 0.9, MATLAB's default), ``weight_decay``, ``lr_schedule`` (``constant`` |
        ``cosine`` decay to 0 over ``max_steps`` or ``max_epochs``).
    Length
        ``max_epochs`` (None: no limit), ``max_steps`` (-1: no limit), ``max_time_s`` (None: no
        limit; a wall-clock cap), ``val_check_interval`` (training iterations between validations;
        the paper: 10), ``early_stopping_patience`` (validations without improvement; None: off).
    Data
        ``n_train``/``n_val`` signals (paper: 10,000 split 80/20), ``seed``, ``fresh_data`` (new
        training signals every epoch instead of a fixed set), ``simulation``
        (``SimulationConfig.to_dict()``), ``scalogram`` (``ScalogramConfig.to_dict()``),
        ``num_workers`` (data-loader processes), ``eval_batch_size`` (validation batches).
    Hardware
        ``accelerator`` (``auto`` picks a GPU when there is one), ``devices``, ``strategy``
        (e.g. ``ddp``), ``num_nodes``, ``precision`` (Lightning's, e.g. ``32-true``,
        ``bf16-mixed``), ``deterministic``.
    """

    model: ModelKind = "scalogram_cnn"
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    kernel_sizes: tuple[int, ...] = (DEFAULT_KERNEL_SIZE,) * len(DEFAULT_WIDTHS)
    norm: Norm = "batch"
    input_scale: InputScale = "per_sample"
    spectrum_n_points: int | None = None
    spectrum_ppm_range: tuple[float, float] | None = None
    uncertainty: Uncertainty = "gaussian"
    batch_size: int = 30
    eval_batch_size: int = 200
    learning_rate: float = 1e-5
    optimizer: Optimizer = "adam"
    weight_decay: float = 0.0
    lr_schedule: LrSchedule = "constant"
    max_epochs: int | None = 100
    max_steps: int = -1
    max_time_s: float | None = None
    val_check_interval: int = 10
    early_stopping_patience: int | None = 20
    n_train: int = 8000
    n_val: int = 2000
    seed: int = 0
    fresh_data: bool = True
    simulation: Mapping[str, Any] = field(default_factory=dict)
    scalogram: Mapping[str, Any] = field(default_factory=dict)
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    deterministic: bool = True

    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        check(
            self.model in MODEL_KINDS,
            f"unknown model {self.model!r}; choose {' or '.join(MODEL_KINDS)}",
        )
        check(
            self.uncertainty in UNCERTAINTY_KINDS,
            f"unknown uncertainty {self.uncertainty!r}; choose {' or '.join(UNCERTAINTY_KINDS)}",
        )
        check(
            self.optimizer in ("adam", "adamw", "sgdm"),
            f"unknown optimizer {self.optimizer!r}; choose adam, adamw or sgdm",
        )
        check(
            self.lr_schedule in ("constant", "cosine"),
            f"unknown lr_schedule {self.lr_schedule!r}; choose constant or cosine",
        )
        for name, least in (
            ("batch_size", 1),
            ("eval_batch_size", 1),
            ("n_train", 1),
            ("n_val", 1),
            ("val_check_interval", 1),
            ("num_nodes", 1),
            ("seed", 0),  # numpy takes no negative seed
        ):
            object.__setattr__(self, name, whole_number(name, getattr(self, name), least))
        for name in ("fresh_data", "deterministic"):
            true_or_false(name, getattr(self, name))
        object.__setattr__(
            self, "learning_rate", positive_number("learning_rate", self.learning_rate)
        )
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("max_epochs", "early_stopping_patience"):
            value = whole_number(name, getattr(self, name), 1, or_none=True)
            object.__setattr__(self, name, value)
        check(
            self.max_steps == -1 or self.max_steps > 0,
            f"max_steps must be positive or -1, got {self.max_steps}",
        )
        check(
            self.max_epochs is not None or self.max_steps > 0 or self.max_time_s is not None,
            "set at least one of max_epochs, max_steps or max_time_s, or training never ends",
        )
        check(
            self.max_time_s is None or self.max_time_s > 0,
            f"max_time_s must be positive or null, got {self.max_time_s}",
        )
        object.__setattr__(self, "num_workers", whole_number("num_workers", self.num_workers, 0))
        check(
            self.batch_size <= self.n_train,
            f"batch_size {self.batch_size} exceeds n_train {self.n_train}",
        )
        check(
            not (self.lr_schedule == "cosine" and self.max_steps == -1 and self.max_epochs is None),
            "lr_schedule 'cosine' needs max_steps or max_epochs to know where the decay ends",
        )
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        kernels = self.kernel_sizes
        kernels = (
            (kernels,) * len(self.widths)
            if isinstance(kernels, int)
            else tuple(int(k) for k in kernels)
        )
        object.__setattr__(self, "kernel_sizes", kernels)
        if self.spectrum_ppm_range is not None:
            object.__setattr__(
                self, "spectrum_ppm_range", tuple(float(p) for p in self.spectrum_ppm_range)
            )
        object.__setattr__(self, "simulation", dict(self.simulation))
        object.__setattr__(self, "scalogram", dict(self.scalogram))
        # fail now, not after minutes of simulation, if the sub-configurations are invalid
        # the scalogram settings too where the spectrum CNN does not use them: a bad value in
        # the user's file is refused, not trained past without a word
        self.simulation_config()
        self.scalogram_config()

    # -- sub-configurations -------------------------------------------------------------------
    def simulation_config(self) -> SimulationConfig:
        return SimulationConfig.from_dict(self.simulation)

    def scalogram_config(self) -> ScalogramConfig:
        return ScalogramConfig.from_dict(self.scalogram)

    def quantifier_config(self, basis: BasisSet) -> QuantifierConfig:
        """The model part of this config on the acquisition grid and metabolites of ``basis``."""
        return QuantifierConfig(
            model=self.model,
            metabolites=basis.names,
            n_points=basis.n_points,
            dwell_time_s=basis.dwell_time_s,
            spectrometer_freq_mhz=basis.spectrometer_freq_mhz,
            ppm_reference=basis.ppm_reference,
            nucleus=basis.nucleus,
            widths=self.widths,
            kernel_sizes=self.kernel_sizes,
            norm=self.norm,
            input_scale=self.input_scale,
            scalogram=self.scalogram_config().to_dict() if self.model == "scalogram_cnn" else None,
            spectrum_n_points=self.spectrum_n_points,
            spectrum_ppm_range=self.spectrum_ppm_range,
            uncertainty=self.uncertainty,
        )

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe dict; ``TrainConfig.from_dict(c.to_dict()) == c``."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("widths", "kernel_sizes", "spectrum_ppm_range"):
            if d[key] is not None:
                d[key] = list(d[key])
        d["simulation"] = dict(self.simulation)
        d["scalogram"] = dict(self.scalogram)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        return dataclass_from_dict(cls, d, "training")

    def with_overrides(self, overrides: Mapping[str, Any]) -> TrainConfig:
        """A new config with ``overrides`` applied (``None`` values are ignored)."""
        merged = {**self.to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
        return TrainConfig.from_dict(merged)

    @classmethod
    def preset(cls, name: PresetName, model: ModelKind = "scalogram_cnn") -> TrainConfig:
        """The named preset for ``model`` (see the module docstring)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        if model not in MODEL_KINDS:
            raise ConfigError(f"unknown model {model!r}; choose {' or '.join(MODEL_KINDS)}")
        base = cls(
            model=model,
            simulation=SimulationConfig().to_dict(),
            scalogram=_scalogram_preset(name).to_dict(),
        )
        return dataclasses.replace(base, **_PRESET_VALUES[name])


def _scalogram_preset(name: str) -> ScalogramConfig:
    if name == "paper":
        return ScalogramConfig.preset("paper")
    cpu = ScalogramConfig.preset("cpu")
    return cpu if name == "cpu" else dataclasses.replace(cpu, **_SMALL_SCALOGRAM[name])


# Scalogram sizes of the small presets, as changes to ScalogramConfig.preset("cpu") (2 x 128 x 384).
_SMALL_SCALOGRAM: dict[str, dict[str, Any]] = {
    "quick": {"n_scales": 64, "decimation": 8},  # 2 x 64 x 192
    "tiny": {"n_scales": 64, "decimation": 16},  # 2 x 64 x 96
}
_SMALL_WIDTHS = (8, 16, 32, 32, 64, 64)
# shared by `cpu` and `quick` (Adam at 1e-3 decayed to 0 by a cosine; see the measurements above)
_SMALL_BASE: dict[str, Any] = dict(
    fresh_data=False,  # the paper's fixed-set protocol; fresh data only pay off in long runs
    widths=_SMALL_WIDTHS,
    batch_size=32,
    learning_rate=1e-3,
    lr_schedule="cosine",
    early_stopping_patience=3,
)
_PRESET_VALUES: dict[str, dict[str, Any]] = {
    "paper": dict(
        norm="none",
        batch_size=30,
        eval_batch_size=60,
        learning_rate=1e-5,
        optimizer="adam",
        lr_schedule="constant",
        val_check_interval=10,
        n_train=8000,
        n_val=2000,
        max_epochs=30,  # MATLAB's default MaxEpochs; the paper gives none
        early_stopping_patience=100,  # validations = 1000 iterations, ~4 epochs
        fresh_data=False,  # the paper's fixed 10,000 signals
        deterministic=False,
    ),
    "cpu": {
        **_SMALL_BASE,
        "max_epochs": 6,
        "val_check_interval": 250,
        "n_train": 8000,
        "n_val": 2000,
        "max_time_s": 690.0,
    },
    "quick": {
        **_SMALL_BASE,
        "max_epochs": 5,
        "val_check_interval": 125,
        "n_train": 4000,
        "n_val": 500,
        "max_time_s": 100.0,
    },
    "tiny": dict(
        fresh_data=False,
        widths=_SMALL_WIDTHS,
        batch_size=32,
        learning_rate=2e-3,
        max_epochs=4,
        val_check_interval=64,
        early_stopping_patience=None,
        n_train=2048,
        n_val=256,
    ),
}
