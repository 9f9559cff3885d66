"""The procedural sample world: ray-cast street scenes and rooms written in the vKITTI, KITTI-raw and
NYUD-v2 on-disk layouts, for the demo and the tests (no real data can be shipped)."""
