"""NYUD-v2 test set (docs/release.md §2.3): CSV lines ``rgb_path,depth_path``; depth is a 16-bit PNG in mm."""
from typing import Sequence

from torch.utils.data import Dataset

from constants import DEPTH_SCALE, EVAL_CROP, LOAD_SIZE, NYU_DEPTH_UNITS

from .common import load_depth_png, open_image, read_list, resize_image, resolve, to_network_input
from .evalset import EvalSet


class NYUDv2Test(Dataset):
    """Items: ``image`` (3, h, w) in [-1, 1] at ``load_size``; ``depth`` (H, W) float64 metres
    (0 = no measurement); ``index``; ``path`` of the RGB image."""

    def __init__(self, root: str, list_file: str, load_size: Sequence[int] = LOAD_SIZE["NYUD_V2"]) -> None:
        self.root = root
        self.load_size = tuple(load_size)
        self.entries = read_list(list_file, 2, sep=",", root=root, check_fields=(0, 1))

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict:
        entry = self.entries[i]
        rgb_path, depth_path = (resolve(self.root, f) for f in entry.fields)
        img = open_image(rgb_path, entry)
        depth = load_depth_png(depth_path, NYU_DEPTH_UNITS, entry, (img.height, img.width),
                               "NYUD-v2 depth must be a 16-bit PNG in millimetres")
        return {"image": to_network_input(resize_image(img, self.load_size)), "depth": depth, "index": i,
                "path": rgb_path}


EVAL_SET = EvalSet(
    name="NYUD_V2", build=NYUDv2Test,
    layout="DenseDepth's nyu2_test PNGs (RGB, 16-bit depth in mm); CSV lines 'rgb_path,depth_path'",
    depth_scale=DEPTH_SCALE["NYUD_V2"], load_size=LOAD_SIZE["NYUD_V2"], max_depth=DEPTH_SCALE["NYUD_V2"],
    crop=EVAL_CROP["NYUD_V2"], split="datasets/nyudv2/nyu2_test.csv")
