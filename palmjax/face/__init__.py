"""Face liveness at a bank self-service terminal (SPEC pipeline F, steps F1-F8).

* :mod:`~palmjax.face.session`: :class:`Session`, :class:`SessionConfig`, the session kinds
  and frame checks;
* :mod:`~palmjax.face.simulate`: the procedural 3D-face session simulator (live, print,
  replay, mask, impostor; image and echo from one face);
* :mod:`~palmjax.face.session_io`: real-frame readers (frame folders, videos) and ``.npz``
  session files;
* :mod:`~palmjax.face.similarity`: F1 LBP-histogram + skin-chromaticity descriptor, calibrated similarity;
* :mod:`~palmjax.face.cues`: F2-F4 features and calibrated optax classifiers;
* :mod:`~palmjax.face.fusion`: F5 image fusion;
* :mod:`~palmjax.face.decision`: F8 and the auditable :class:`DecisionRecord`;
* :mod:`~palmjax.face.check`: ``check_session(session, enrolled, models, config)``;
* :mod:`~palmjax.face.train`: training the cue classifiers on simulated sessions.
"""

from palmjax.face.check import (FaceCheckConfig, FaceModels, check_session, default_models_path,
                                load_models, sim_models_path, validate_session)
from palmjax.face.cues import (CUES, CueClassifierConfig, CueModel, FeatureConfig,
                               cue_features)
from palmjax.face.decision import OUTCOMES, DecisionConfig, DecisionRecord
from palmjax.face.fusion import ImageFusion, ImageFusionConfig, fuse_image, lighting_accuracy
from palmjax.face.session import ATTACK_KINDS, KINDS, Session, SessionConfig
from palmjax.face.session_io import load_session
from palmjax.face.simulate import region_offsets_m, render, simulate_batch, simulate_session
from palmjax.face.similarity import (LBP_EMBEDDING, Embedding, FaceDescriptorConfig,
                                     LBPDescriptorConfig, SimilarityCalibration,
                                     calibrate_similarity, chi_square, chroma_descriptor,
                                     face_descriptor, face_distance, lbp_chroma_embedding,
                                     lbp_descriptor, session_distance, similarity_score)

__all__ = [
    "ATTACK_KINDS", "CUES", "CueClassifierConfig", "CueModel", "DecisionConfig",
    "DecisionRecord", "Embedding", "FaceCheckConfig", "FaceModels", "FeatureConfig",
    "ImageFusion", "ImageFusionConfig", "KINDS", "LBPDescriptorConfig", "LBP_EMBEDDING",
    "OUTCOMES", "Session", "SessionConfig", "check_session", "chi_square", "cue_features",
    "default_models_path", "fuse_image", "lbp_descriptor", "lighting_accuracy",
    "load_models", "sim_models_path", "load_session", "region_offsets_m", "render", "similarity_score",
    "simulate_batch", "simulate_session", "validate_session",
    "FaceDescriptorConfig", "SimilarityCalibration", "calibrate_similarity",
    "chroma_descriptor", "face_descriptor", "face_distance", "lbp_chroma_embedding",
    "session_distance",
]
