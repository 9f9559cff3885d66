"""Training of the three S2R-DepthNet stages (train.py): losses, stages, data order and the loop."""
from .losses import depth_gradient, depth_loss, structure_loss
from .trainer import Trainer, TrainingDiverged, run_training

__all__ = ["Trainer", "TrainingDiverged", "depth_gradient", "depth_loss", "run_training", "structure_loss"]
