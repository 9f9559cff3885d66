"""Datasets in their real on-disk layouts: vKITTI (training), KITTI Eigen and NYUD-v2 (test)."""
from .common import DatasetError, collate_eval
from .kitti import GTCache, KITTIEigenTest, generate_depth_map
from .nyu import NYUDv2Test
from .transforms import AugmentFlags
from .vkitti import ImageListDataset, SyntheticDepthDataset

__all__ = ["AugmentFlags", "DatasetError", "GTCache", "ImageListDataset", "KITTIEigenTest", "NYUDv2Test",
           "SyntheticDepthDataset", "collate_eval", "generate_depth_map"]
