"""Datasets in their real on-disk layouts: vKITTI (training), KITTI Eigen and NYUD-v2 (test)."""
from .common import DatasetError, collate_eval
from .kitti import GTCache, KITTIEigenTest, generate_depth_map
from .nyu import NYUDv2Test

__all__ = ["DatasetError", "GTCache", "KITTIEigenTest", "NYUDv2Test", "collate_eval",
           "generate_depth_map"]
