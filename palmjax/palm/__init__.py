"""Palm bone-joint liveness (palm patent, pipeline P): quality gate, SR, classifier, tuning.

* :mod:`palmjax.palm.clinical` — clinical input: a full radiograph (PNG/JPEG/TIFF/DICOM)
  cropped to the hand at the capture size (P1);
* :mod:`palmjax.palm.quality` — capture quality gate (P1b);
* :mod:`palmjax.palm.sr` — SRCNN trained on simulated capture pairs (P2-P3);
* :mod:`palmjax.palm.train` — liveness classifier training/evaluation (P4-P5);
* :mod:`palmjax.palm.detector` — the pipeline end to end (P1, P7);
* :mod:`palmjax.palm.store`, :mod:`palmjax.palm.tune` — field samples and tuning (P6).
"""

from palmjax.palm.detector import PalmLivenessDetector, PalmResult
from palmjax.palm.quality import QualityConfig, check_quality
from palmjax.palm.store import FieldStore
from palmjax.palm.train import PalmTrainConfig

__all__ = ["FieldStore", "PalmLivenessDetector", "PalmResult", "PalmTrainConfig",
           "QualityConfig", "check_quality"]
