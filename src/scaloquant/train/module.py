"""The LightningModule: loss, optimiser, logged metrics and the checkpoint payload.

Loss: mean squared error of the amplitudes, each metabolite's error divided by the standard
deviation of its training targets (``amplitude_std``), so that metabolites with different ranges
weigh alike; with the paper's ``U[0, 1]`` amplitudes this is the plain MSE times 12.
Logged: ``train/loss`` (per step), ``val/loss`` and ``val/rmse`` (RMSE of the amplitudes over all
metabolites and validation signals, in basis units: the figure the paper's 0.148 compares with).

With uncertainty, the optimiser minimises ``loss + nll``: ``nll`` is the Gaussian negative
log-likelihood of the detached residual (:func:`scaloquant.models.uncertainty.gaussian_nll`),
whose gradient reaches the log-variance head only, so ``loss`` and everything it trains are
exactly as without uncertainty; ``train/nll`` and ``val/nll`` are logged beside it, and
``val/loss`` alone chooses the checkpoint and stops early.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torchmetrics import MeanSquaredError

from ..models.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEY
from ..models.quantifier import Quantifier
from ..models.uncertainty import gaussian_nll
from .config import TrainConfig
from .data import SignalBatch, batch_fingerprint


class QuantifierModule(L.LightningModule):
    """Trains a :class:`~scaloquant.models.Quantifier`.

    Parameters
    ----------
    quantifier : the model (normalisation already fitted).
    config : the training settings.
    amplitude_std : ``(M,)`` standard deviation of each metabolite's training amplitudes.
    metadata : JSON-safe facts stored in every checkpoint under ``"scaloquant"`` (basis, grid,
        seeds, versions; see :func:`scaloquant.train.checkpoint.checkpoint_metadata`).
    """

    def __init__(
        self,
        quantifier: Quantifier,
        config: TrainConfig,
        amplitude_std: torch.Tensor,
        metadata: Mapping[str, Any],
    ) -> None:
        super().__init__()
        self.quantifier = quantifier
        self.train_config = config
        self.metadata = dict(metadata)
        self.register_buffer("amplitude_std", torch.as_tensor(amplitude_std, dtype=torch.float32))
        self.val_mse = MeanSquaredError()
        #: first-batch fingerprint of every epoch on this rank (written to the logs per rank)
        self.data_fingerprints: dict[int, str] = {}

    def forward(self, fids: torch.Tensor) -> torch.Tensor:
        return self.quantifier(fids)

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((pred - target) / self.amplitude_std).square().mean()

    def _losses(self, batch: SignalBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Amplitudes ``(B, M)``, the amplitude loss and the variance head's NLL (or None)."""
        features = None if batch.features is None else (batch.features, batch.scale)
        out = self.quantifier.normalised_outputs(batch.fids, features=features)
        pred = self.quantifier.amplitudes_from(out.z, out.scale)
        nll = None
        if out.log_var is not None:
            z_true = self.quantifier.normalised_targets(batch.amplitudes, out.scale)
            nll = gaussian_nll(out.z, z_true, out.log_var)
        return pred, self._loss(pred, batch.amplitudes), nll

    def training_step(self, batch: SignalBatch, batch_idx: int) -> torch.Tensor:
        if batch_idx == 0:
            self.data_fingerprints[self.current_epoch] = batch_fingerprint(batch)
        _, loss, nll = self._losses(batch)
        log = dict(on_step=True, on_epoch=False, batch_size=len(batch.fids))
        self.log("train/loss", loss, prog_bar=True, **log)
        if nll is None:
            return loss
        self.log("train/nll", nll, **log)
        return loss + nll

    def validation_step(self, batch: SignalBatch, batch_idx: int) -> None:
        pred, loss, nll = self._losses(batch)
        log = dict(on_epoch=True, sync_dist=True, batch_size=len(batch.fids))
        self.log("val/loss", loss, prog_bar=True, **log)
        if nll is not None:
            self.log("val/nll", nll, **log)
        self.val_mse.update(pred, batch.amplitudes)

    def on_validation_epoch_end(self) -> None:
        self.log("val/rmse", self.val_mse.compute().sqrt(), prog_bar=True)
        self.val_mse.reset()

    def configure_optimizers(self) -> Any:
        cfg = self.train_config
        params = self.quantifier.parameters()
        if cfg.optimizer == "sgdm":
            optimizer = torch.optim.SGD(
                params, lr=cfg.learning_rate, momentum=0.9, weight_decay=cfg.weight_decay
            )
        elif cfg.optimizer == "adamw":
            optimizer = torch.optim.AdamW(
                params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
            )
        else:
            optimizer = torch.optim.Adam(
                params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
            )
        if cfg.lr_schedule == "constant":
            return optimizer
        # Lightning's count covers max_steps/max_epochs, the loader length and the world size
        total = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # plain JSON types only, so torch.load(weights_only=True) can read it back
        checkpoint[CHECKPOINT_KEY] = json.loads(
            json.dumps(
                {
                    **self.metadata,
                    "format": CHECKPOINT_FORMAT,
                    "quantifier": self.quantifier.config.to_dict(),
                    "train_config": self.train_config.to_dict(),
                    "global_step": int(self.global_step),
                    "epoch": int(self.current_epoch),
                }
            )
        )
