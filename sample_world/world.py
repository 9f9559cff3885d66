"""Procedural "sample world": small stand-ins for Virtual KITTI, KITTI raw, NYUD-v2 and paintings.

No real dataset can be downloaded, so this module renders its own, written in the *real* on-disk
layouts so that the project's ordinary loaders (and the KITTI velodyne-projection code) read
them unchanged.  Street scenes and rooms are built from axis-aligned boxes, ray cast per pixel
(``sample_world/raycast.py``), textured procedurally and lit per weather variant; depth maps, RGB
and lidar scans all come from the same hit buffers.  Everything is derived from
``np.random.default_rng([seed, stream, ...])`` so a seed reproduces byte-identical files.
"""
from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache, partial
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .raycast import BASE, SKY, Camera, Hits, Lidar, cast, rotation

# ----------------------------------------------------------------------------- constants
VKITTI_K = (725.0087, 725.0087, 620.5, 187.0)  # fx, fy, cx, cy of Virtual KITTI at 1242x375
KITTI_K = (721.5377, 721.5377, 609.5593, 172.854)  # P_rect_02 of KITTI raw 2011_09_26
NYU_K = (518.8579, 519.4696, 325.5825, 253.7362)
OUTDOOR_REF_SIZE = (1242, 375)
NYU_REF_SIZE = (640, 480)
KITTI_DATE = "2011_09_26"
KITTI_FRAME_STRIDE = 10  # listed KITTI frames are 10 raw frames (about 1 s) apart
CAM_HEIGHT = 1.65
CAM_OFFSETS = {"00": 0.0, "01": -0.54, "02": 0.06, "03": -0.48}  # tx / fx of P_rect_0X
VELO_T = (0.0, -0.08, -0.27)  # velodyne origin in camera-0 coords: 8 cm higher, 27 cm behind
HDL64_ELEVATIONS = np.concatenate([np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.8, 32)])
CAMERA_FAR = 500.0  # farther hits are rendered as sky (vKITTI depth stays below 65535 cm)
LIDAR_RANGE = 120.0
VKITTI_SKY = 65535

VARIANT_NAMES = ("clone", "fog", "sunset", "overcast", "morning", "rain")

PRESETS: dict[str, dict] = {
    "default": dict(vkitti_worlds=2, vkitti_frames=16, variants=("clone", "fog", "sunset", "overcast"),
                    vkitti_size=(1242, 375), kitti_drives=3, kitti_frames=4, kitti_size=(1242, 375),
                    lidar_azimuths=1800, nyu_rooms=8, nyu_size=(640, 480), style_images=32,
                    style_size=(640, 192)),
    "tiny": dict(vkitti_worlds=1, vkitti_frames=2, variants=("clone", "fog"), vkitti_size=(320, 96),
                 kitti_drives=1, kitti_frames=2, kitti_size=(320, 96), lidar_azimuths=720,
                 nyu_rooms=2, nyu_size=(160, 120), style_images=2, style_size=(160, 48)),
}

# random streams: each product draws from its own stream, so counts can change independently
_S_VKITTI, _S_KITTI, _S_NYU, _S_STYLE, _S_LIGHT, _S_NOISE, _S_CALIB = range(1, 8)

# surface kinds (texture + lidar reflectance)
(GROUND, SHELL, FACADE, ROOF, CONCRETE, CAR, GLASS, TYRE, METAL, BARK, FOLIAGE, SIGN,
 WOOD, FABRIC, PAINTED, BOOKS, SCREEN, PICTURE, WINDOW, DOOR) = range(20)
_REFLECTANCE = np.array([0.18, 0.3, 0.35, 0.3, 0.32, 0.55, 0.1, 0.05, 0.6, 0.3, 0.42, 0.92,
                         0.4, 0.3, 0.5, 0.3, 0.1, 0.3, 0.1, 0.4], dtype=np.float32)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


# ----------------------------------------------------------------------------- procedural noise
def _hash01(*ints: np.ndarray) -> np.ndarray:
    """Deterministic per-cell random numbers in [0, 1) from integer lattice coordinates."""
    h = np.zeros(np.broadcast_shapes(*[np.shape(i) for i in ints]) or (1,), dtype=np.uint32)
    for i, mult in zip(ints, (0x8DA6B343, 0xD8163841, 0xCB1AB31F, 0x9E3779B9)):
        h ^= np.asarray(i).astype(np.int64).astype(np.uint32) * np.uint32(mult)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(16)
    return (h >> np.uint32(8)).astype(np.float32) / np.float32(1 << 24)


def _noise_tile(rng: np.random.Generator, size: int = 256, octaves: int = 5) -> np.ndarray:
    """Periodic fractal value noise in [0, 1]; sampled instead of evaluated per pixel for speed."""
    out = np.zeros((size, size), dtype=np.float64)
    amp = 1.0
    for o in range(octaves):
        n = 4 << o
        lattice = rng.random((n, n))
        x = np.arange(size) * n / size
        i0 = np.floor(x).astype(int)
        f = x - i0
        f = f * f * (3 - 2 * f)
        i1 = (i0 + 1) % n
        rows = lattice[:, i0] * (1 - f) + lattice[:, i1] * f
        out += amp * (rows[i0] * (1 - f)[:, None] + rows[i1] * f[:, None])
        amp *= 0.5
    out -= out.min()
    return (out / out.max()).astype(np.float32)


def _sample(tile: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear, wrapping lookup of a square power-of-two tile at texel coordinates (u, v)."""
    n = tile.shape[0]
    fu, fv = np.floor(u), np.floor(v)
    au, av = (u - fu).astype(np.float32), (v - fv).astype(np.float32)
    iu, iv = fu.astype(np.int64) & (n - 1), fv.astype(np.int64) & (n - 1)
    ju, jv = (iu + 1) & (n - 1), (iv + 1) & (n - 1)
    flat = tile.ravel()
    a, b, c, d = flat[iv * n + iu], flat[iv * n + ju], flat[jv * n + iu], flat[jv * n + ju]
    top = a + (b - a) * au
    return top + (c + (d - c) * au - top) * av


def _frac(x: np.ndarray) -> np.ndarray:
    return x - np.floor(x)


def _jitter(rng: np.random.Generator, colour, amount: float = 0.06) -> np.ndarray:
    return np.clip(np.asarray(colour, dtype=np.float64) * rng.uniform(1 - amount, 1 + amount, 3), 0, 1)


# ----------------------------------------------------------------------------- scenes
@dataclass
class _Scene:
    """Boxes with per-box surface kind, colour and 4 texture parameters, plus a base surface."""

    lo: np.ndarray
    hi: np.ndarray
    kind: np.ndarray
    colour: np.ndarray
    param: np.ndarray
    tiles: list
    info: dict  # street layout + camera path (outdoor) or room description (indoor)
    shell: tuple | None = None


class _Builder:
    """Collects boxes; corners may be given in any order."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, a, b, kind: int, colour, param=(0.0, 0.0, 0.0, 0.0)) -> None:
        a, b = np.asarray(a, float), np.asarray(b, float)
        self.rows.append((np.minimum(a, b), np.maximum(a, b), kind, np.asarray(colour, float),
                          np.asarray(param, float)))

    def scene(self, rng: np.random.Generator, info: dict, shell=None) -> _Scene:
        cols = list(zip(*self.rows)) if self.rows else [[]] * 5
        shape3 = (len(self.rows), 3)
        return _Scene(lo=np.array(cols[0], float).reshape(shape3), hi=np.array(cols[1], float).reshape(shape3),
                      kind=np.array(cols[2], int), colour=np.array(cols[3], np.float32).reshape(shape3),
                      param=np.array(cols[4], np.float32).reshape(-1, 4),
                      tiles=[_noise_tile(rng) for _ in range(3)], info=info, shell=shell)


_FACADE_COLOURS = [(0.78, 0.72, 0.62), (0.62, 0.60, 0.58), (0.55, 0.30, 0.22), (0.85, 0.84, 0.80),
                   (0.70, 0.62, 0.50), (0.45, 0.47, 0.50), (0.80, 0.70, 0.55), (0.60, 0.66, 0.70)]
_CAR_COLOURS = [(0.9, 0.9, 0.9), (0.08, 0.08, 0.09), (0.6, 0.62, 0.64), (0.6, 0.08, 0.07),
                (0.12, 0.2, 0.5), (0.35, 0.36, 0.38), (0.12, 0.3, 0.18), (0.85, 0.7, 0.15)]


def _car(b: _Builder, rng: np.random.Generator, x: float, y: float) -> None:
    """A car/van from 5 boxes: body, two axles (wheels), glazed cabin, roof."""
    length, width = rng.uniform(3.8, 4.9), rng.uniform(1.7, 1.95)
    clear, body = 0.3, rng.uniform(0.55, 0.75)
    cabin = rng.uniform(0.9, 1.3) if rng.random() < 0.15 else rng.uniform(0.42, 0.6)
    colour = _jitter(rng, _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))])
    hw, hl, top = width / 2, length / 2, clear + body
    b.add((x - hw, y - hl, clear), (x + hw, y + hl, top), CAR, colour)
    for a in (y - hl + 0.8, y + hl - 0.8):
        b.add((x - hw - 0.02, a - 0.33, 0.0), (x + hw + 0.02, a + 0.33, 0.64), TYRE, (0.05, 0.05, 0.05))
    front, back = rng.uniform(0.9, 1.3), rng.uniform(0.5, 0.9)
    b.add((x - hw + 0.08, y - hl + back, top), (x + hw - 0.08, y + hl - front, top + cabin), GLASS,
          (0.1, 0.12, 0.15))
    b.add((x - hw + 0.1, y - hl + back + 0.1, top + cabin), (x + hw - 0.1, y + hl - front - 0.1,
                                                            top + cabin + 0.05), CAR, colour)


def _tree(b: _Builder, rng: np.random.Generator, x: float, y: float, scale: float = 1.0) -> None:
    trunk = rng.uniform(1.5, 3.5) * scale
    w, h = rng.uniform(1.5, 4.5) * scale, rng.uniform(2.0, 5.0) * scale
    green = _jitter(rng, (rng.uniform(0.12, 0.3), rng.uniform(0.3, 0.45), rng.uniform(0.08, 0.15)), 0.15)
    b.add((x - 0.15, y - 0.15, 0), (x + 0.15, y + 0.15, trunk + 0.3), BARK, _jitter(rng, (0.35, 0.25, 0.17)))
    b.add((x - w / 2, y - w / 2, trunk), (x + w / 2, y + w / 2, trunk + h), FOLIAGE, green)
    b.add((x - w / 3, y - w / 3, trunk - 0.3 * scale), (x + w / 3, y + w / 3, trunk + h + 0.5 * scale),
          FOLIAGE, green * 0.9)


def _street(rng: np.random.Generator, path_len: float) -> _Scene:
    """A straight road with kerbs, buildings, trees, poles and cars; camera path in ``info``."""
    area = int(rng.choice(3, p=[0.45, 0.35, 0.2]))  # urban, suburban, rural
    lane = rng.uniform(3.2, 3.8)
    park = 2.3 if area < 2 and rng.random() < 0.7 else 0.0
    road_half = lane + park + 0.3
    walk = rng.uniform(2.0, 4.5) if area < 2 else 0.0
    kerb = rng.uniform(0.1, 0.18)
    y_start, y_end = -40.0, path_len + 260.0
    cross = []
    if area < 2:
        y = rng.uniform(15, 80)
        while y < y_end:
            w = rng.uniform(9, 14)
            cross.append((y, y + w))
            y += w + rng.uniform(50, 150)

    def free(a: float, c: float) -> bool:
        return all(c < s - 1 or a > e + 1 for s, e in cross)

    b = _Builder()
    edges = [y_start] + [v for s, e in cross for v in (s, e)] + [y_end]
    concrete = _jitter(rng, np.array([0.62, 0.61, 0.58]) * rng.uniform(0.85, 1.15))
    for side in (-1, 1):
        if walk:
            for a, c in zip(edges[::2], edges[1::2]):
                b.add((side * road_half, a, 0), (side * (road_half + walk), c, kerb), CONCRETE, concrete)
        elif rng.random() < 0.6:
            x = side * (road_half + 0.6)
            b.add((x - 0.05, y_start, 0.45), (x + 0.05, y_end, 0.75), METAL, (0.6, 0.62, 0.63))
    # buildings
    for side in (-1, 1):
        y = y_start + rng.uniform(0, 10)
        while y < y_end:
            length = [rng.uniform(10, 35), rng.uniform(8, 16), rng.uniform(6, 14)][area]
            if not free(y, y + length):
                y = max(e for s, e in cross if s - 1 <= y + length) + 2.0
                continue
            setback = [rng.uniform(0.2, 3), rng.uniform(4, 12), rng.uniform(8, 30)][area]
            depth = rng.uniform(8, 20)
            height = [rng.uniform(8, 30), rng.uniform(4, 9), rng.uniform(3, 7)][area]
            x0 = road_half + walk + setback
            colour = _jitter(rng, _FACADE_COLOURS[rng.integers(len(_FACADE_COLOURS))], 0.12)
            param = (rng.uniform(1.6, 3.4), rng.uniform(2.8, 3.6), float(area == 0 and rng.random() < 0.6),
                     float(rng.random() < 0.3))
            b.add((side * x0, y, 0), (side * (x0 + depth), y + length, height), FACADE, colour, param)
            if area == 0 and rng.random() < 0.35:
                inset = rng.uniform(1, 4)
                b.add((side * (x0 + inset), y + 1, height), (side * (x0 + depth), y + length - 1,
                                                              height + rng.uniform(3, 12)), FACADE,
                      colour * 0.95, param)
            elif area > 0 and rng.random() < 0.7:
                b.add((side * (x0 + 1), y + 0.8, height), (side * (x0 + depth - 1), y + length - 0.8,
                                                          height + rng.uniform(0.8, 2.0)), ROOF,
                      _jitter(rng, (0.4, 0.25, 0.2) if rng.random() < 0.5 else (0.3, 0.3, 0.32), 0.2))
            y += length + [rng.uniform(0, 3), rng.uniform(4, 15), rng.uniform(20, 80)][area]
    # trees, poles, signs
    for side in (-1, 1):
        y = y_start + rng.uniform(0, 8)
        while y < y_end:
            x = road_half + (0.8 if area == 0 else walk + rng.uniform(0.8, 3.0))
            if free(y - 3, y + 3) and (area > 0 or rng.random() < 0.6):  # sparser in town
                _tree(b, rng, side * x, y)
            y += [rng.uniform(8, 25), rng.uniform(5, 15), rng.uniform(3, 10)][area]
        if area == 2:
            for _ in range(rng.integers(10, 30)):
                _tree(b, rng, side * (road_half + rng.uniform(4, 40)), rng.uniform(y_start, y_end), 1.4)
        y = y_start + rng.uniform(0, 20)
        while y < y_end and area < 2:
            x = side * (road_half + 0.4)
            if free(y - 1, y + 1):
                h = rng.uniform(6, 8)
                b.add((x - 0.08, y - 0.08, 0), (x + 0.08, y + 0.08, h), METAL, (0.45, 0.46, 0.48))
                b.add((x, y - 0.05, h - 0.1), (x - side * 1.8, y + 0.05, h), METAL, (0.45, 0.46, 0.48))
                b.add((x - side * 1.5, y - 0.2, h - 0.15), (x - side * 2.1, y + 0.2, h), METAL,
                      (0.8, 0.8, 0.75))
                if rng.random() < 0.3:
                    b.add((x - 0.05, y - 0.4, 2.2), (x + 0.05, y + 0.4, 3.0), SIGN,
                          [(0.8, 0.1, 0.1), (0.1, 0.25, 0.7), (0.9, 0.75, 0.1)][rng.integers(3)])
            y += rng.uniform(25, 45)
    # cars: parked, oncoming lane, ahead in the ego lane (the ego path itself stays free)
    if park:
        for side in (-1, 1):
            y = y_start + rng.uniform(0, 6)
            while y < y_end:
                if rng.random() < 0.65 and free(y - 3, y + 3):
                    _car(b, rng, side * (lane + park / 2 + 0.1), y)
                y += rng.uniform(5.5, 9.0)
    for _ in range(rng.integers(1, 6)):
        _car(b, rng, -lane / 2 + rng.normal(0, 0.15), rng.uniform(y_start, y_end))
    for _ in range(rng.integers(0, 3)):
        _car(b, rng, lane / 2 + rng.normal(0, 0.15), path_len + rng.uniform(10, 60))
    # distant backdrop (hills / skyline) closing the far end of the street
    for _ in range(rng.integers(2, 6)):
        xc, w = rng.uniform(-250, 250), rng.uniform(60, 200)
        y0 = rng.uniform(y_end + 40, 420)
        if area == 0 and rng.random() < 0.6:
            b.add((xc - w / 2, y0, 0), (xc + w / 2, y0 + rng.uniform(20, 60), rng.uniform(30, 80)),
                  FACADE, _jitter(rng, (0.6, 0.62, 0.66), 0.15), (3.0, 3.5, 0.0, 0.0))
        else:
            b.add((xc - w / 2, y0, 0), (xc + w / 2, y0 + rng.uniform(20, 60), rng.uniform(8, 45)),
                  FOLIAGE, _jitter(rng, (0.18, 0.28, 0.15), 0.2))
    info = dict(area=area, lane=lane, park=park, road_half=road_half, walk=walk, cross=cross,
                asphalt=float(rng.uniform(0.2, 0.36)), grass=bool(area > 0 or rng.random() < 0.4),
                path=dict(x=lane / 2 + rng.normal(0, 0.12), y0=rng.uniform(0, 5),
                          yaw0=np.deg2rad(rng.normal(0, 1.5)), yaw_amp=np.deg2rad(rng.uniform(0, 3)),
                          yaw_freq=rng.uniform(0.05, 0.3), phase=rng.uniform(0, 2 * np.pi),
                          pitch=np.deg2rad(np.clip(rng.normal(0, 0.3), -0.6, 0.6)),
                          roll=np.deg2rad(np.clip(rng.normal(0, 0.2), -0.4, 0.4))))
    return b.scene(rng, info)


def _street_pose(path: dict, frame: float, metres_per_frame: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world rotation and centre of the (rectified) camera at a path position."""
    yaw = path["yaw0"] + path["yaw_amp"] * np.sin(path["phase"] + frame * path["yaw_freq"])
    centre = np.array([path["x"], path["y0"] + frame * metres_per_frame, CAM_HEIGHT])
    return rotation(yaw, path["pitch"], path["roll"]), centre


# ---- rooms -----------------------------------------------------------------------------
def _wood(rng):
    return _jitter(rng, [(0.55, 0.38, 0.22), (0.72, 0.56, 0.38), (0.35, 0.22, 0.13), (0.8, 0.7, 0.55)]
                   [rng.integers(4)], 0.1)


def _fabric(rng):
    return _jitter(rng, np.array([rng.uniform(0.2, 0.9) for _ in range(3)]) * rng.uniform(0.6, 1.0), 0.05)


def _paint(rng):
    return _jitter(rng, [(0.92, 0.92, 0.9), (0.85, 0.82, 0.75), (0.7, 0.75, 0.8), (0.3, 0.3, 0.32)]
                   [rng.integers(4)], 0.05)


def _piece(name: str, rng: np.random.Generator) -> tuple[float, list]:
    """Furniture in local coordinates (x along the wall, y away from it, z up): (width, boxes)."""
    boxes = []
    add = lambda a, b, k, c: boxes.append((a, b, k, c))  # noqa: E731
    if name == "bed":
        w, l = rng.uniform(1.0, 1.8), rng.uniform(1.9, 2.1)
        wood = _wood(rng)
        add((0, 0, 0), (w, l, 0.35), WOOD, wood)
        add((0.03, 0.05, 0.35), (w - 0.03, l - 0.03, 0.55), FABRIC, _fabric(rng))
        add((0, 0, 0), (w, 0.08, rng.uniform(0.8, 1.1)), WOOD, wood)
        add((0.1, 0.15, 0.55), (w - 0.1, 0.55, 0.68), FABRIC, (0.9, 0.9, 0.88))
    elif name == "wardrobe":
        w = rng.uniform(0.8, 2.0)
        add((0, 0, 0), (w, 0.6, rng.uniform(1.8, 2.2)), WOOD if rng.random() < 0.6 else PAINTED,
            _wood(rng) if rng.random() < 0.6 else _paint(rng))
    elif name == "bookcase":
        w, h = rng.uniform(0.6, 1.6), rng.uniform(1.2, 2.1)
        add((0, 0, 0), (w, 0.35, h), BOOKS, _wood(rng))
    elif name in ("desk", "table"):
        w, d = rng.uniform(1.0, 1.6), rng.uniform(0.6, 0.9)
        wood = _wood(rng)
        add((0, 0, 0.72), (w, d, 0.76), WOOD, wood)
        for x in (0, w - 0.05):
            for y in (0, d - 0.05):
                add((x, y, 0), (x + 0.05, y + 0.05, 0.72), WOOD, wood)
        chair = _fabric(rng)
        cx = rng.uniform(0.1, w - 0.55)
        add((cx, d + 0.05, 0.42), (cx + 0.45, d + 0.5, 0.48), WOOD, chair)
        add((cx, d + 0.45, 0.48), (cx + 0.45, d + 0.5, 0.95), WOOD, chair)
        for x in (cx, cx + 0.41):
            for y in (d + 0.05, d + 0.46):
                add((x, y, 0), (x + 0.04, y + 0.04, 0.42), METAL, (0.3, 0.3, 0.3))
    elif name in ("cabinet", "counter"):
        w = rng.uniform(0.6, 2.5)
        h = 0.9 if name == "counter" else rng.uniform(0.5, 1.2)
        add((0, 0, 0), (w, 0.6, h), PAINTED, _paint(rng))
        add((0, 0, h), (w, 0.62, h + 0.03), WOOD, _wood(rng))
        if name == "counter" and rng.random() < 0.7:
            add((0, 0, 1.45), (w, 0.35, 2.15), PAINTED, _paint(rng))
    elif name == "sofa":
        w, c = rng.uniform(1.6, 2.4), _fabric(rng)
        add((0, 0, 0), (w, 0.9, 0.45), FABRIC, c)
        add((0, 0, 0.45), (w, 0.22, 0.85), FABRIC, c * 0.92)
        for x in (0, w - 0.2):
            add((x, 0, 0.45), (x + 0.2, 0.9, 0.62), FABRIC, c * 0.95)
    elif name == "tv":
        w = rng.uniform(1.0, 1.8)
        add((0, 0, 0), (w, 0.45, 0.5), WOOD, _wood(rng))
        sw = min(w - 0.1, rng.uniform(0.9, 1.4))
        add((w / 2 - sw / 2, 0.1, 0.55), (w / 2 + sw / 2, 0.16, 0.55 + sw * 0.56), SCREEN, (0.04, 0.04, 0.05))
        add((w / 2 - 0.1, 0.08, 0.5), (w / 2 + 0.1, 0.2, 0.55), METAL, (0.2, 0.2, 0.2))
    elif name == "fridge":
        add((0, 0, 0), (0.7, 0.7, rng.uniform(1.6, 1.9)), PAINTED, _jitter(rng, (0.9, 0.9, 0.9), 0.03))
    elif name == "plant":
        add((0.1, 0.1, 0), (0.4, 0.4, 0.35), PAINTED, _jitter(rng, (0.6, 0.35, 0.25)))
        h = rng.uniform(0.5, 1.3)
        add((0, 0, 0.35), (0.5, 0.5, 0.35 + h), FOLIAGE, _jitter(rng, (0.15, 0.35, 0.12), 0.2))
    elif name == "coffee":
        wood, rug = _wood(rng), _fabric(rng)
        add((0, 0, 0), (1.6, 1.2, 0.01), FABRIC, rug)
        add((0.3, 0.3, 0.35), (1.3, 0.9, 0.4), WOOD, wood)
        for x in (0.3, 1.24):
            add((x, 0.3, 0.01), (x + 0.06, 0.9, 0.35), WOOD, wood)
    elif name == "nightstand":
        add((0, 0, 0), (0.5, 0.4, 0.55), WOOD, _wood(rng))
        add((0.22, 0.17, 0.55), (0.28, 0.23, 0.95), METAL, (0.3, 0.3, 0.3))
        add((0.1, 0.05, 0.95), (0.4, 0.35, 1.2), FABRIC, _jitter(rng, (0.9, 0.85, 0.7)))
    width = max(bx[1][0] for bx in boxes)
    return width, boxes


_ROOM_TYPES = {
    "bedroom": (["bed", "wardrobe", "nightstand", "desk", "bookcase", "plant"], None),
    "living": (["sofa", "tv", "bookcase", "cabinet", "plant", "nightstand"], "coffee"),
    "kitchen": (["counter", "fridge", "counter", "cabinet"], "table"),
    "office": (["desk", "bookcase", "cabinet", "plant", "wardrobe", "desk"], "table"),
}


def _to_room(wall: int, offset: float, a, b, dims) -> tuple[np.ndarray, np.ndarray]:
    """Map local piece coordinates onto wall 0 (y=0), 1 (x=W), 2 (y=D) or 3 (x=0)."""
    W, D = dims
    pts = []
    for lx, ly in ((a[0], a[1]), (b[0], b[1])):
        pts.append({0: (offset + lx, ly), 1: (W - ly, offset + lx), 2: (offset + lx, D - ly),
                    3: (ly, offset + lx)}[wall])
    (x0, y0), (x1, y1) = pts
    p, q = np.array([x0, y0, a[2]]), np.array([x1, y1, b[2]])
    return np.minimum(p, q), np.maximum(p, q)


def _room(rng: np.random.Generator) -> _Scene:
    """A furnished box room; the camera stands near wall 0 looking into the room."""
    W, D, H = rng.uniform(3.0, 6.5), rng.uniform(3.5, 9.0), rng.uniform(2.4, 3.0)
    rtype = list(_ROOM_TYPES)[rng.integers(len(_ROOM_TYPES))]
    pieces, centre_piece = _ROOM_TYPES[rtype]
    cam = np.array([rng.uniform(0.35, 0.65) * W, rng.uniform(0.3, 0.8), rng.uniform(1.0, 1.5)])
    b = _Builder()

    def clear_of_camera(lo, hi) -> bool:
        return bool(np.any(cam[:2] < lo[:2] - 0.6) or np.any(cam[:2] > hi[:2] + 0.6))

    def place(boxes, wall, offset, shift=(0.0, 0.0, 0.0)) -> None:
        world = []
        for a, c, k, col in boxes:
            lo, hi = _to_room(wall, offset, a, c, (W, D))
            world.append((lo + shift, hi + shift, k, col))
        if all(clear_of_camera(lo, hi) for lo, hi, _, _ in world):
            front = 1.0 if wall in (0, 2) else 0.0
            for lo, hi, k, col in world:
                b.add(lo, hi, k, col, (rng.random(), rng.random(), rng.random(), front))

    for wall in (1, 2, 3):
        span = W if wall == 2 else D
        pos = rng.uniform(0, 0.5)
        while True:
            width, boxes = _piece(pieces[rng.integers(len(pieces))], rng)
            if pos + width > span:
                break
            place(boxes, wall, pos)
            pos += width + rng.uniform(0.05, 0.8)
        for _ in range(rng.integers(0, 3)):  # pictures, windows, doors: thin boxes on the wall
            k = [PICTURE, WINDOW, DOOR][rng.integers(3)]
            w, h, z = {PICTURE: (rng.uniform(0.4, 1.2), rng.uniform(0.3, 0.9), rng.uniform(1.2, 1.6)),
                       WINDOW: (rng.uniform(0.8, 1.6), rng.uniform(1.0, 1.4), rng.uniform(0.8, 1.0)),
                       DOOR: (0.85, 2.05, 0.0)}[k]
            off = rng.uniform(0.1, max(0.2, span - w - 0.1))
            colour = {PICTURE: _fabric(rng), WINDOW: (0.85, 0.9, 1.0), DOOR: _wood(rng)}[k]
            place([((0, 0, z), (w, 0.03, z + h), k, colour)], wall, off)
    if centre_piece and W > 3.2 and D > 4.0:
        width, boxes = _piece(centre_piece, rng)
        place(boxes, 0, rng.uniform(0.8, max(0.9, W - width - 0.8)), np.array([0.0, rng.uniform(2.0, D - 2.0), 0.0]))
    floor = int(rng.integers(3))  # planks, tiles, carpet
    info = dict(type=rtype, size=(W, D, H), floor=floor,
                floor_colour=_wood(rng) if floor == 0 else _paint(rng) * rng.uniform(0.7, 1.0),
                wall_colour=_paint(rng) if rng.random() < 0.7 else _fabric(rng) * 0.5 + 0.45,
                light=np.array([rng.uniform(0.3, 0.7) * W, rng.uniform(0.4, 0.7) * D, H - 0.05]),
                light_colour=_jitter(rng, (1.0, 0.93, 0.8), 0.05), light_power=rng.uniform(2.0, 4.0),
                ambient=rng.uniform(0.3, 0.45),
                camera=dict(centre=cam, yaw=np.deg2rad(rng.uniform(-30, 30)),
                            pitch=np.deg2rad(rng.uniform(-25, -5)), roll=np.deg2rad(rng.normal(0, 1))))
    return b.scene(rng, info, shell=(np.zeros(3), np.array([W, D, H])))


# ----------------------------------------------------------------------------- texturing
def _smooth(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


class _Surf:
    """The hit points of one surface kind, with face-aligned texture coordinates in metres."""

    def __init__(self, scene: _Scene, p: np.ndarray, face: np.ndarray, box: np.ndarray) -> None:
        self.scene, self.p, self.box = scene, p, box
        self.axis = face // 2
        self.sign = (2 * (face % 2) - 1).astype(np.float32)
        self.u = np.where(self.axis == 0, p[1], p[0])  # horizontal coordinate on the face
        self.v = np.where(self.axis == 2, p[1], p[2])  # height (vertical faces) or y (horizontal)
        self._box = np.maximum(box, 0)

    @cached_property
    def colour(self) -> np.ndarray:
        return self.scene.colour[self._box]

    @cached_property
    def param(self) -> np.ndarray:
        return self.scene.param[self._box]

    @cached_property
    def lo(self) -> np.ndarray:
        return self.scene.lo[self._box]

    @cached_property
    def hi(self) -> np.ndarray:
        return self.scene.hi[self._box]

    def noise(self, scale_u: float, scale_v: float | None = None, which: int = 0) -> np.ndarray:
        return _sample(self.scene.tiles[which], self.u * scale_u, self.v * (scale_u if scale_v is None else scale_v))

    def face_uv01(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Position on the face in [0, 1]^2 and the face's extent (metres) along u and v."""
        ulo = np.where(self.axis == 0, self.lo[:, 1], self.lo[:, 0])
        uhi = np.where(self.axis == 0, self.hi[:, 1], self.hi[:, 0])
        vlo = np.where(self.axis == 2, self.lo[:, 1], self.lo[:, 2])
        vhi = np.where(self.axis == 2, self.hi[:, 1], self.hi[:, 2])
        du, dv = np.maximum(uhi - ulo, 1e-6), np.maximum(vhi - vlo, 1e-6)
        return (self.u - ulo) / du, (self.v - vlo) / dv, du, dv

    def front(self) -> np.ndarray:
        """True on the face of wall furniture that looks into the room (param[3] holds its axis)."""
        return self.axis == self.param[:, 3].astype(int)


def _tex_plain(s: _Surf, amp: float = 0.15, scale: float = 4.0) -> np.ndarray:
    return s.colour * (1 - amp + 2 * amp * s.noise(scale))[:, None]


def _ground_marks(x: np.ndarray, y: np.ndarray, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """(road mask, painted-marking mask) of the ground plane at world (x, y)."""
    ax = np.abs(x)
    cross = np.zeros(x.shape, bool)
    zebra = np.zeros(x.shape, bool)
    for a, b in info["cross"]:
        cross |= (y > a) & (y < b)
        zebra |= (((y > a - 4) & (y < a - 1)) | ((y > b + 1) & (y < b + 4))) & (_frac(x) < 0.5)
    road = (ax < info["road_half"]) | cross
    on_road = (ax < info["road_half"]) & ~cross
    lines = (ax < 0.08) & (np.mod(y, 9.0) < 3.0)
    if info["park"]:
        lines |= np.abs(ax - info["lane"]) < 0.08
    elif not info["walk"]:
        lines |= np.abs(ax - info["road_half"] + 0.25) < 0.08
    return road, (lines & on_road) | (zebra & (ax < info["road_half"]))


def _tex_ground(s: _Surf) -> np.ndarray:
    info = s.scene.info
    x, y = s.p[0], s.p[1]
    road, marks = _ground_marks(x, y, info)
    n = s.noise(2.5)
    patches = s.noise(0.08, which=1)
    grey = info["asphalt"] * (0.8 + 0.35 * n + 0.3 * (patches - 0.5))
    track = 1 - 0.12 * np.exp(-((np.abs(np.abs(x - info["lane"] / 2) - 0.8)) / 0.35) ** 2)
    asphalt = np.stack([grey, grey, grey * 1.04], 1) * track[:, None]
    worn = (s.noise(9.0, which=2) > 0.25)[:, None]
    asphalt = np.where(marks[:, None] & worn, np.array([0.86, 0.86, 0.8]) * (0.85 + 0.15 * n)[:, None], asphalt)
    if info["grass"]:
        g = s.noise(1.3, which=2)
        verge = np.stack([0.2 + 0.15 * g, 0.32 + 0.15 * n, 0.1 + 0.05 * g], 1) * (0.6 + 0.6 * n)[:, None]
    else:
        seam = (_frac(x / 0.4) < 0.05) | (_frac(y / 0.4) < 0.05)
        verge = np.array([0.52, 0.5, 0.47]) * ((0.8 + 0.3 * n) * np.where(seam, 0.75, 1.0))[:, None]
    return np.where(road[:, None], asphalt, verge)


def _tex_facade(s: _Surf) -> np.ndarray:
    sx, fh, shop, brick = s.param.T
    vert = s.axis < 2
    base = s.colour * (0.82 + 0.36 * s.noise(5.0))[:, None]
    row = np.floor(s.v / 0.075)
    mortar = (_frac(s.v / 0.075) < 0.15) | (_frac((s.u + 0.125 * (row % 2)) / 0.25) < 0.06)
    base = np.where(((brick > 0.5) & mortar & vert)[:, None], 0.7 * base + 0.2, base)
    cu, cv = _frac(s.u / sx), _frac(s.v / fh)
    col, flo = np.floor(s.u / sx), np.floor(s.v / fh)
    top = s.hi[:, 2]
    upper = vert & (s.v > 0.8) & (s.v < top - 0.6) & (flo >= shop)
    win = upper & (np.abs(cu - 0.5) < 0.24) & (cv > 0.3) & (cv < 0.82)
    sill = upper & ~win & (np.abs(cu - 0.5) < 0.3) & (cv > 0.24) & (cv < 0.88)
    shop_win = vert & (shop > 0.5) & (s.v > 0.4) & (s.v < 0.78 * fh) & (np.abs(cu - 0.5) < 0.45)
    lit = _hash01(col, flo, s.box)
    glass = np.stack([0.09 + 0.2 * lit, 0.11 + 0.22 * lit, 0.15 + 0.25 * lit], 1) * (0.7 + 0.6 * cv)[:, None]
    out = np.where(sill[:, None], np.minimum(base * 1.25 + 0.05, 1.0), base)
    out = np.where((win | shop_win)[:, None], glass, out)
    roof = np.array([0.3, 0.3, 0.31]) * (0.75 + 0.5 * s.noise(3.0))[:, None]
    return np.where((s.axis == 2)[:, None], roof, out)


def _tex_roof(s: _Surf) -> np.ndarray:
    rows = np.where(_frac(s.v / 0.3) > 0.15, 1.0, 0.8)  # tile courses
    return s.colour * ((0.8 + 0.35 * s.noise(4.0)) * rows)[:, None]


def _tex_concrete(s: _Surf) -> np.ndarray:
    c = s.colour * (0.85 + 0.3 * s.noise(6.0))[:, None]
    seam = (s.axis == 2) & ((_frac(s.u / 0.6) < 0.03) | (_frac(s.v / 0.6) < 0.03))
    c = np.where(seam[:, None], c * 0.72, c)
    kerb = (np.abs(np.abs(s.p[0]) - s.scene.info["road_half"]) < 0.25) | (s.axis < 2)
    return np.where(kerb[:, None], np.minimum(c * 1.15, 1.0), c)


def _tex_car(s: _Surf) -> np.ndarray:
    c = s.colour * (0.93 + 0.12 * s.noise(3.0))[:, None]
    fu, fv, du, _ = s.face_uv01()
    trim = (s.axis < 2) & (fv < 0.25)
    lamp = (s.axis == 1) & (fv > 0.55) & (fv < 0.85) & ((fu * du < 0.35) | ((1 - fu) * du < 0.35))
    lamp_col = np.where((s.sign > 0)[:, None], np.array([0.95, 0.92, 0.8]), np.array([0.7, 0.06, 0.05]))
    c = np.where(trim[:, None], c * 0.45, c)
    return np.where(lamp[:, None], lamp_col, c)


def _tex_glass(s: _Surf) -> np.ndarray:
    _, fv, _, _ = s.face_uv01()
    return s.colour * (0.7 + 0.7 * fv)[:, None]


def _tex_bark(s: _Surf) -> np.ndarray:
    return s.colour * (0.65 + 0.6 * _sample(s.scene.tiles[1], s.u * 25, s.v * 1.5))[:, None]


def _tex_foliage(s: _Surf) -> np.ndarray:
    n = s.noise(7.0, which=1)
    holes = np.where(s.noise(16.0, which=2) < 0.3, 0.45, 1.0)
    return s.colour * ((0.45 + 1.0 * n) * holes)[:, None]


def _tex_sign(s: _Surf) -> np.ndarray:
    fu, fv, du, dv = s.face_uv01()
    border = (np.minimum(fu, 1 - fu) * du < 0.06) | (np.minimum(fv, 1 - fv) * dv < 0.06)
    return np.where(border[:, None], 0.9, _tex_plain(s, 0.05))


def _tex_wood(s: _Surf) -> np.ndarray:
    grain = _sample(s.scene.tiles[1], s.u * 0.7, s.v * 40.0)
    return s.colour * (0.72 + 0.5 * grain)[:, None]


def _tex_fabric(s: _Surf) -> np.ndarray:
    weave = 0.96 + 0.04 * np.sin(s.u * 400) * np.sin(s.v * 400)
    return s.colour * ((0.85 + 0.25 * s.noise(12.0, which=2)) * weave)[:, None]


def _tex_books(s: _Surf) -> np.ndarray:
    fu, fv, du, dv = s.face_uv01()
    front = s.front()
    shelf_v = np.mod(fv * dv, 0.38)
    board = shelf_v < 0.03
    book = np.floor(s.u / 0.035)
    h = _hash01(book, np.floor(fv * dv / 0.38), s.box)
    spine = _hsv_to_rgb(h * 7.31, 0.3 + 0.5 * _hash01(book, s.box), 0.25 + 0.6 * h)
    filled = (shelf_v - 0.03 < 0.17 + 0.15 * h) & (np.minimum(fu, 1 - fu) * du > 0.03)
    inner = np.where(filled[:, None], spine, 0.08)
    wood = _tex_wood(s)
    return np.where((front & ~board)[:, None], inner, wood)


def _tex_picture(s: _Surf) -> np.ndarray:
    fu, fv, du, dv = s.face_uv01()
    frame = (np.minimum(fu, 1 - fu) * du < 0.04) | (np.minimum(fv, 1 - fv) * dv < 0.04)
    cell = _hash01(np.floor(s.u / 0.17), np.floor(s.v / 0.13), s.box)
    art = _hsv_to_rgb(cell * 3.7 + s.param[:, 0], 0.6, 0.35 + 0.6 * cell) * 0.6 + s.colour * 0.4
    return np.where((frame | ~s.front())[:, None], np.array([0.25, 0.18, 0.1]), art)


def _tex_window(s: _Surf) -> np.ndarray:
    fu, fv, du, dv = s.face_uv01()
    bar = (np.minimum(fu, 1 - fu) * du < 0.06) | (np.minimum(fv, 1 - fv) * dv < 0.06) | \
          (np.abs(fu - 0.5) * du < 0.03) | (np.abs(fv - 0.6) * dv < 0.03)
    sky = np.stack([0.75 + 0.1 * fv, 0.82 + 0.1 * fv, 0.95 + 0.05 * fv], 1)
    return np.where((bar | ~s.front())[:, None], np.array([0.9, 0.9, 0.88]), sky)


def _tex_door(s: _Surf) -> np.ndarray:
    fu, fv, du, dv = s.face_uv01()
    panel = ((np.abs(np.mod(fv * dv, 0.95) - 0.06) < 0.02) | (np.abs(fu * du - 0.1) < 0.02) |
             (np.abs((1 - fu) * du - 0.1) < 0.02)) & s.front()
    handle = s.front() & (np.abs(fu * du - 0.72) < 0.05) & (np.abs(fv * dv - 1.0) < 0.03)
    c = np.where(panel[:, None], _tex_wood(s) * 0.7, _tex_wood(s))
    return np.where(handle[:, None], np.array([0.75, 0.7, 0.5]), c)


def _tex_shell(s: _Surf) -> np.ndarray:
    info = s.scene.info
    floor, ceiling = (s.axis == 2) & (s.sign > 0), (s.axis == 2) & (s.sign < 0)  # normals face inwards
    n = s.noise(3.0)
    wall = np.asarray(info["wall_colour"]) * (0.94 + 0.1 * n)[:, None]
    wall = np.where((s.p[2] < 0.08)[:, None], np.array([0.9, 0.9, 0.88]), wall)
    kind, fc = info["floor"], np.asarray(info["floor_colour"])
    x, y = s.p[0], s.p[1]
    if kind == 0:  # planks along y, staggered joints
        plank = np.floor(x / 0.16)
        seg = np.floor((y + 3.0 * _hash01(plank)) / 1.3)
        tint = 0.8 + 0.35 * _hash01(plank, seg)
        grain = _sample(s.scene.tiles[1], x * 40.0, y * 0.8)
        seam = (_frac(x / 0.16) < 0.04) | (_frac((y + 3.0 * _hash01(plank)) / 1.3) < 0.006)
        fl = fc * (tint * (0.8 + 0.3 * grain) * np.where(seam, 0.6, 1.0))[:, None]
    elif kind == 1:  # tiles with grout
        grout = (_frac(x / 0.45) < 0.03) | (_frac(y / 0.45) < 0.03)
        tint = 0.9 + 0.15 * _hash01(np.floor(x / 0.45), np.floor(y / 0.45))
        fl = np.where(grout[:, None], 0.55, fc * (tint * (0.92 + 0.1 * n))[:, None])
    else:  # carpet
        fl = fc * (0.75 + 0.4 * _sample(s.scene.tiles[2], x * 30.0, y * 30.0))[:, None]
    ceil = np.array([0.93, 0.93, 0.92]) * (0.97 + 0.05 * n)[:, None]
    return np.where(floor[:, None], fl, np.where(ceiling[:, None], ceil, wall))


_TEXTURES = {
    GROUND: _tex_ground, SHELL: _tex_shell, FACADE: _tex_facade, ROOF: _tex_roof,
    CONCRETE: _tex_concrete, CAR: _tex_car, GLASS: _tex_glass, TYRE: partial(_tex_plain, amp=0.1),
    METAL: partial(_tex_plain, amp=0.1, scale=2.0), BARK: _tex_bark, FOLIAGE: _tex_foliage,
    SIGN: _tex_sign, WOOD: _tex_wood, FABRIC: _tex_fabric, PAINTED: partial(_tex_plain, amp=0.04),
    BOOKS: _tex_books, SCREEN: partial(_tex_plain, amp=0.05), PICTURE: _tex_picture,
    WINDOW: _tex_window, DOOR: _tex_door,
}


def _albedo(scene: _Scene, hits: Hits) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) albedo and (H, W) surface kind (-1 on sky) of the hit buffers."""
    obj, face = hits.obj.ravel(), hits.face.ravel()
    p = hits.point.reshape(3, -1)
    kind = np.full(obj.size, -1, dtype=np.int16)
    boxes = obj > 0
    kind[boxes] = scene.kind[obj[boxes] - 1]
    kind[obj == BASE] = GROUND if scene.shell is None else SHELL
    out = np.zeros((obj.size, 3), dtype=np.float32)
    for k in np.unique(kind[kind >= 0]):
        idx = np.flatnonzero(kind == k)
        out[idx] = _TEXTURES[int(k)](_Surf(scene, p[:, idx], face[idx], obj[idx] - 1))
    return out.reshape(*hits.t.shape, 3), kind.reshape(hits.t.shape)


def _hsv_to_rgb(h, s, v) -> np.ndarray:
    h6 = _frac(np.asarray(h, dtype=np.float32)) * 6
    s, v = np.broadcast_arrays(np.asarray(s, np.float32), np.asarray(v, np.float32))
    i = np.floor(h6).astype(int) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.stack([np.choose(i, [v, q, p, p, t, v]), np.choose(i, [t, v, v, q, p, p]),
                     np.choose(i, [p, p, t, v, v, q])], -1)


# ----------------------------------------------------------------------------- lighting
_VARIANT_SPECS: dict[str, dict] = {
    "clone": dict(sun_el=(30, 60), sun=(1.0, 0.95, 0.85), sun_i=0.8, amb=(0.5, 0.55, 0.64),
                  zenith=(0.22, 0.42, 0.8), horizon=(0.68, 0.78, 0.92), haze=(700, 1200), clouds=0.35),
    "fog": dict(sun_el=(30, 60), sun=(1.0, 1.0, 1.0), sun_i=0.12, amb=(0.8, 0.82, 0.85),
                zenith=(0.78, 0.8, 0.83), horizon=(0.79, 0.81, 0.84), haze=(25, 60), clouds=0.0, sat=0.7),
    "sunset": dict(sun_el=(2, 10), sun=(1.0, 0.55, 0.28), sun_i=1.0, amb=(0.34, 0.27, 0.36),
                   zenith=(0.16, 0.16, 0.38), horizon=(0.98, 0.58, 0.32), haze=(300, 500), clouds=0.4,
                   glow=0.8, sat=1.1),
    "overcast": dict(sun_el=(40, 70), sun=(1.0, 1.0, 1.0), sun_i=0.1, amb=(0.78, 0.8, 0.84),
                     zenith=(0.62, 0.65, 0.7), horizon=(0.8, 0.82, 0.85), haze=(500, 800), clouds=0.9,
                     sat=0.8, exposure=0.95),
    "morning": dict(sun_el=(10, 25), sun=(1.0, 0.85, 0.65), sun_i=0.9, amb=(0.45, 0.5, 0.62),
                    zenith=(0.35, 0.52, 0.82), horizon=(0.95, 0.85, 0.75), haze=(350, 600), clouds=0.25,
                    glow=0.4),
    "rain": dict(sun_el=(40, 70), sun=(1.0, 1.0, 1.0), sun_i=0.05, amb=(0.55, 0.58, 0.62),
                 zenith=(0.42, 0.45, 0.5), horizon=(0.55, 0.58, 0.62), haze=(120, 200), clouds=1.0,
                 sat=0.65, exposure=0.9, wet=0.6, rain=1.0),
}


def _draw_light(name: str, rng: np.random.Generator) -> dict:
    """Resolve a weather variant into concrete, slightly jittered lighting parameters."""
    spec = _VARIANT_SPECS[name]
    el, az = np.deg2rad(rng.uniform(*spec["sun_el"])), rng.uniform(0, 2 * np.pi)
    f32 = partial(np.asarray, dtype=np.float32)
    return dict(sun_dir=f32([np.cos(el) * np.sin(az), np.cos(el) * np.cos(az), np.sin(el)]),
                sun=f32(_jitter(rng, spec["sun"], 0.03) * spec["sun_i"]), amb=f32(_jitter(rng, spec["amb"], 0.04)),
                zenith=f32(_jitter(rng, spec["zenith"], 0.04)), horizon=f32(_jitter(rng, spec["horizon"], 0.03)),
                haze=rng.uniform(*spec["haze"]), clouds=spec["clouds"] * rng.uniform(0.7, 1.1),
                glow=spec.get("glow", 0.0), sat=spec.get("sat", 1.0), exposure=spec.get("exposure", 1.0),
                wet=spec.get("wet", 0.0), rain=spec.get("rain", 0.0), name=name)


def _sky(d: np.ndarray, light: dict, tile: np.ndarray) -> np.ndarray:
    """(n, 3) sky colour along unit world directions (3, n): gradient, sun glow, clouds."""
    up = np.clip(d[2], 0.0, 1.0)
    t = (up ** 0.55)[:, None]
    c = light["horizon"] * (1 - t) + light["zenith"] * t
    cos_sun = d.T @ light["sun_dir"]
    c = c + light["glow"] * np.exp((cos_sun - 1) * 12.0)[:, None] * light["sun"] + \
        np.where(cos_sun > 0.9996, 1.5, 0.0)[:, None] * light["sun"]
    if light["clouds"] > 0:
        dz = np.maximum(d[2], 0.04)
        n = _sample(tile, d[0] / dz * 30.0, d[1] / dz * 30.0)
        m = _smooth(1.0 - light["clouds"], 1.15 - 0.6 * light["clouds"], n) * np.clip(d[2] * 8, 0, 1)
        cloud = 0.65 * light["horizon"] + 0.22 * light["sun"] / max(float(light["sun"].max()), 1e-3)
        c = c * (1 - m[:, None]) + cloud * (0.85 + 0.2 * n)[:, None] * m[:, None]
    return c


def _select(axis: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Component ``axis`` of a (3, ...) array (axis = -1 gives 0)."""
    return np.where(axis == 0, v[0], np.where(axis == 1, v[1], np.where(axis == 2, v[2], 0.0)))


def _street_shader(scene: _Scene, hits: Hits, dirs: np.ndarray, albedo: np.ndarray, kind: np.ndarray):
    """Precompute the variant-independent part of shading one view; returns ``shade(light, rng)``.

    Lighting is sun + sky ambient, with sky reflections on glass, cars and wet road, haze or
    fog by distance, optional rain streaks and a colour grade.
    """
    norm = np.sqrt((dirs * dirs).sum(0))
    unit = dirs / norm
    sky = hits.obj == SKY
    axis, sign, face = hits.axis, hits.normal_sign, hits.face
    ambient = ((0.75 + 0.25 * np.where(axis == 2, sign, 0.0)) *
               np.where(axis < 2, 1 - 0.35 * np.exp(-hits.point[2] / 0.6), 1.0)).astype(np.float32)
    dist = np.where(sky, 0.0, hits.t * norm).astype(np.float32)
    base = np.ascontiguousarray(albedo.transpose(2, 0, 1))
    rows, cols = np.nonzero((kind == GLASS) | (kind == CAR) | (kind == GROUND))
    mirrored = unit[:, rows, cols].copy()
    mirrored[axis[rows, cols], np.arange(rows.size)] *= -1
    fixed = np.where(kind[rows, cols] == GLASS, 0.15, np.where(kind[rows, cols] == CAR, 0.1, 0.0))
    road = kind[rows, cols] == GROUND
    sky_dirs = unit[:, sky]

    def shade(light: dict, rng: np.random.Generator) -> np.ndarray:
        table = np.concatenate([[0.0], np.repeat(light["sun_dir"], 2) * np.tile([-1.0, 1.0], 3)])
        ndl = np.clip(table[face + 1], 0, None).astype(np.float32)
        rgb = base * (light["amb"][:, None, None] * ambient + light["sun"][:, None, None] * ndl)
        w = (fixed + road * 0.5 * light["wet"]).astype(np.float32)
        on = w > 0
        if on.any():
            r, c, wo = rows[on], cols[on], w[on]
            rgb[:, r, c] = rgb[:, r, c] * (1 - wo) + wo * _sky(mirrored[:, on], light, scene.tiles[2]).T
        f = 1 - np.exp(-dist / np.float32(light["haze"]))
        rgb += (light["horizon"][:, None, None] - rgb) * f
        rgb[:, sky] = light["horizon"][:, None] if light["name"] == "fog" else _sky(sky_dirs, light, scene.tiles[2]).T
        if light["rain"]:
            h = rgb.shape[1]
            seeds = (rng.random(rgb.shape[1:], dtype=np.float32) > 0.9985).astype(np.float32)
            streak = np.zeros_like(seeds)
            n = max(3, h // 25)
            for i in range(n):
                streak[i:] += seeds[: h - i] * (1 - i / n)
            rgb += 0.22 * streak[None]
        grey = rgb.mean(0, keepdims=True)
        rgb = (grey + (rgb - grey) * np.float32(light["sat"])) * np.float32(light["exposure"])
        return np.clip(rgb.transpose(1, 2, 0), 0, 1)

    return shade


def _camera_look(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A real-camera look for the KITTI stand-in: white balance, vignetting, blur, sensor noise."""
    h, w = rgb.shape[:2]
    y, x = np.ogrid[:h, :w]
    r2 = ((x - w / 2) / (w / 2)) ** 2 * 0.6 + ((y - h / 2) / (h / 2)) ** 2 * 0.4
    out = rgb * (_jitter(rng, (1.0, 0.98, 0.93), 0.04) * (1 - 0.28 * r2)[..., None]).astype(np.float32)
    out = (out + np.roll(out, 1, 0) * 0.5 + np.roll(out, -1, 0) * 0.5) / 2
    out = (out + np.roll(out, 1, 1) * 0.5 + np.roll(out, -1, 1) * 0.5) / 2
    return np.clip(out ** 1.1 + 0.015 * rng.standard_normal(out.shape, dtype=np.float32), 0, 1)


def _shade_room(scene: _Scene, hits: Hits, albedo: np.ndarray, kind: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Ceiling point light with distance falloff + ambient, corner occlusion, emissive windows."""
    info = scene.info
    axis, sign = hits.axis, hits.normal_sign
    to_light = info["light"][:, None, None] - hits.point
    dist = np.sqrt((to_light ** 2).sum(0)) + 1e-6
    ndl = np.clip(sign * _select(axis, to_light) / dist, 0, None)
    irr = info["light_power"] * ndl / (1 + (dist / 2.0) ** 2)
    lo, hi = scene.shell
    gaps = np.minimum(hits.point - lo[:, None, None], hi[:, None, None] - hits.point)
    gaps[axis[None] == np.arange(3)[:, None, None]] = np.inf
    corner = np.where(hits.obj == BASE, 1 - 0.35 * np.exp(-gaps.min(0) / 0.25), 1.0)
    ao = corner * np.where((axis < 2) & (hits.obj > 0), 1 - 0.3 * np.exp(-hits.point[2] / 0.2), 1.0)
    lit = info["ambient"] * ao[None] + np.asarray(info["light_colour"])[:, None, None] * irr[None]
    rgb = albedo.transpose(2, 0, 1) * lit + 0.55 * (kind == WINDOW)[None]
    rgb = rgb.transpose(1, 2, 0) * rng.uniform(0.9, 1.15)
    return np.clip(rgb + rng.normal(0, 0.01, rgb.shape), 0, 1)


# ----------------------------------------------------------------------------- cameras & lidar
def _render(scene: _Scene, sensor: Camera | Lidar, far: float) -> tuple[Hits, np.ndarray]:
    dirs = sensor.rays()
    hits = cast(sensor.centre, dirs, scene.lo, scene.hi, sensor.tiles(scene.lo, scene.hi, far), far,
                ground=scene.shell is None, shell=scene.shell)
    return hits, dirs


def _scaled(k: tuple, size: tuple, ref: tuple) -> tuple[float, float, float, float]:
    sx, sy = size[0] / ref[0], size[1] / ref[1]
    return k[0] * sx, k[1] * sy, k[2] * sx, k[3] * sy


def _q(values) -> np.ndarray:
    """Round to the precision written in KITTI calib files, so renders use exactly the file's values."""
    return np.vectorize(lambda x: float(f"{x:e}"))(np.asarray(values, dtype=np.float64))


def _small_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = np.deg2rad(rng.uniform(0, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _kitti_rig(seed: int, size: tuple[int, int]) -> dict:
    """Calibration of the synthetic KITTI car (one per date, as in KITTI raw)."""
    rng = _rng(seed, _S_CALIB)
    fx, fy, cx, cy = _q(_scaled(KITTI_K, size, OUTDOOR_REF_SIZE))
    velo_axes = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # velo -> camera axes
    P = {cam: _q([[fx, 0, cx, fx * off], [0, fy, cy, 0], [0, 0, 1, 0]]) for cam, off in CAM_OFFSETS.items()}
    return dict(size=tuple(size), fx=fx, fy=fy, cx=cx, cy=cy, P=P,
                R_rect=_q(_small_rotation(rng, 0.5)),
                R=_q(_small_rotation(rng, 0.8) @ velo_axes), T=_q(np.asarray(VELO_T) + rng.normal(0, 0.004, 3)))


def _kitti_camera(rig: dict, rot: np.ndarray, centre0: np.ndarray, cam: str) -> Camera:
    """Camera whose projection is exactly P_rect_<cam> applied to rectified camera-0 coordinates."""
    offset = rig["P"][cam][0, 3] / rig["fx"]
    return Camera(rig["fx"], rig["fy"], rig["cx"], rig["cy"], *rig["size"], rotation=rot,
                  centre=centre0 - rot @ np.array([offset, 0.0, 0.0]), pixel_offset=1.0)


def _kitti_lidar(rig: dict, rot: np.ndarray, centre0: np.ndarray, azimuths: int) -> Lidar:
    """Velodyne placed so that X_rect = R_rect (R X_velo + T) holds exactly."""
    return Lidar(HDL64_ELEVATIONS, azimuths, rotation=rot @ rig["R_rect"] @ rig["R"],
                 centre=centre0 + rot @ rig["R_rect"] @ rig["T"])


def _calib_text(rig: dict) -> tuple[str, str]:
    """calib_cam_to_cam.txt and calib_velo_to_cam.txt in KITTI raw's ``key: values`` format."""
    def row(key, vals) -> str:
        return f"{key}: " + " ".join(f"{v:e}" for v in np.ravel(vals)) + "\n"

    w, h = rig["size"]
    k = np.array([[rig["fx"], 0, rig["cx"]], [0, rig["fy"], rig["cy"]], [0, 0, 1]])
    cam = "calib_time: 01-Jan-2011 00:00:00\n" + row("corner_dist", [9.95e-2])
    for c, off in CAM_OFFSETS.items():
        cam += (row(f"S_{c}", [w, h]) + row(f"K_{c}", k) + row(f"D_{c}", np.zeros(5)) + row(f"R_{c}", np.eye(3))
                + row(f"T_{c}", [off, 0, 0]) + row(f"S_rect_{c}", [w, h]) + row(f"R_rect_{c}", rig["R_rect"])
                + row(f"P_rect_{c}", rig["P"][c]))
    velo = ("calib_time: 01-Jan-2011 00:00:00\n" + row("R", rig["R"]) + row("T", rig["T"])
            + row("delta_f", [0, 0]) + row("delta_c", [0, 0]))
    return cam, velo


def _scan(scene: _Scene, lidar: Lidar, rng: np.random.Generator) -> np.ndarray:
    """(N, 4) float32 velodyne points (x, y, z, reflectance), ordered by azimuth then beam."""
    hits, dirs = _render(scene, lidar, LIDAR_RANGE)
    kind = np.full(hits.obj.shape, -1)
    boxes = hits.obj > 0
    kind[boxes] = scene.kind[hits.obj[boxes] - 1]
    kind[hits.obj == BASE] = GROUND
    refl = _REFLECTANCE[np.maximum(kind, 0)].copy()
    _, marks = _ground_marks(hits.point[0], hits.point[1], scene.info)
    refl[(kind == GROUND) & marks] = 0.75
    rng_t = np.where(hits.obj != SKY, hits.t, 0) + rng.normal(0, 0.01, hits.t.shape).astype(np.float32)
    local = np.einsum("ji,jba->iba", lidar.rotation, dirs.astype(np.float64)) * rng_t
    refl = np.clip(refl + rng.normal(0, 0.04, refl.shape), 0, 1)
    pts = np.concatenate([local, refl[None]]).transpose(2, 1, 0).reshape(-1, 4)
    keep = (hits.obj != SKY).T.ravel()
    return pts[keep].astype("<f4")


def _nyu_camera(scene: _Scene, size: tuple[int, int]) -> Camera:
    c = scene.info["camera"]
    return Camera(*_scaled(NYU_K, size, NYU_REF_SIZE), *size, rotation=rotation(c["yaw"], c["pitch"], c["roll"]),
                  centre=c["centre"])


# ----------------------------------------------------------------------------- paintings
def _palette(rng: np.random.Generator) -> np.ndarray:
    """4-7 colours from a random harmony (analogous, complementary, triadic or free)."""
    k = int(rng.integers(4, 8))
    base, scheme = rng.random(), rng.integers(4)
    hues = [base + rng.uniform(-0.08, 0.08, k), base + 0.5 * rng.integers(0, 2, k) + rng.uniform(-0.04, 0.04, k),
            base + rng.integers(0, 3, k) / 3 + rng.uniform(-0.03, 0.03, k), rng.random(k)][scheme]
    sat, val = rng.uniform(0.3, 1.0, k), rng.uniform(0.3, 1.0, k)
    val[0], val[1], sat[1] = rng.uniform(0.05, 0.3), rng.uniform(0.85, 1.0), sat[1] * 0.5
    return _hsv_to_rgb(hues, sat, val)[rng.permutation(k)]


def _pmap(x: np.ndarray, pal: np.ndarray) -> np.ndarray:
    pos = np.clip(x, 0, 1) * (len(pal) - 1)
    i = np.minimum(np.floor(pos).astype(int), len(pal) - 2)
    f = (pos - i)[..., None]
    return pal[i] * (1 - f) + pal[i + 1] * f


def _cell_sites(rng: np.random.Generator, shape: tuple, cell: float):
    """Jittered grid of sites (one per cell, padded by one cell) and per-pixel cell indices."""
    h, w = shape
    gh, gw = int(h // cell) + 3, int(w // cell) + 3
    gy, gx = np.mgrid[0:gh, 0:gw].astype(np.float32)
    sx = (gx - 1 + rng.random((gh, gw), dtype=np.float32)) * np.float32(cell)
    sy = (gy - 1 + rng.random((gh, gw), dtype=np.float32)) * np.float32(cell)
    iy = (np.arange(h) // cell).astype(int) + 1
    ix = (np.arange(w) // cell).astype(int) + 1
    return sx, sy, iy, ix


def _strokes(img: np.ndarray, rng: np.random.Generator, cell: float, length: float, width: float,
             angle, colour, round_dots: bool = False, density: float = 1.0) -> np.ndarray:
    """Paint one layer of brush strokes (or dots), one per jittered grid cell, fully vectorised.

    Strokes are at most two cells long, so each pixel only needs its 3x3 neighbouring cells.
    """
    h, w = img.shape[:2]
    sx, sy, iy, ix = _cell_sites(rng, (h, w), cell)
    gw = sx.shape[1]
    ang = angle(sx, sy) + np.float32(0.2) * rng.standard_normal(sx.shape, dtype=np.float32)
    ca, sa = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    col = colour(sx, sy).reshape(-1, 3).astype(np.float32)
    prio = np.where(rng.random(sx.shape) < density, rng.random(sx.shape, dtype=np.float32), np.float32(-2))
    half_l = (length / 2 * rng.uniform(0.6, 1.0, sx.shape)).astype(np.float32)
    half_w = (width / 2 * rng.uniform(0.6, 1.0, sx.shape)).astype(np.float32)
    xs, ys = np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]
    best = np.full((h, w), -1.0, dtype=np.float32)
    site = np.zeros((h, w), dtype=np.int64)
    s_best, t_best = np.zeros((h, w), dtype=np.float32), np.zeros((h, w), dtype=np.float32)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            sel = np.ix_(iy + dy, ix + dx)
            ddx, ddy = xs - sx[sel], ys - sy[sel]
            s, t = ddx * ca[sel] + ddy * sa[sel], ddy * ca[sel] - ddx * sa[sel]
            hw = half_w[sel]
            if round_dots:
                inside = s * s + t * t < hw * hw
            else:
                q = s / half_l[sel]
                q *= q
                inside = (q < 1) & (np.abs(t) < hw * np.sqrt(np.clip(1 - q * q, 0, 1)))
            inside &= prio[sel] > best
            best = np.where(inside, prio[sel], best)
            site = np.where(inside, (iy + dy)[:, None] * gw + (ix + dx)[None, :], site)
            s_best, t_best = np.where(inside, s, s_best), np.where(inside, t, t_best)
    # bristle marks across the stroke, darker towards its edges
    freq = np.float32(rng.uniform(1.0, 2.5))
    shade = 0.92 + 0.08 * np.sin(t_best * freq + s_best * 0.15) - 0.12 * (t_best / half_w.ravel()[site]) ** 2
    return np.where((best > -1)[..., None], col[site] * shade[..., None], img)


def _facets(img: np.ndarray, rng: np.random.Generator, cell: float, pal: np.ndarray) -> np.ndarray:
    """Cubist-like flat facets (Voronoi cells) with per-facet gradients and dark outlines."""
    h, w = img.shape[:2]
    sx, sy, iy, ix = _cell_sites(rng, (h, w), cell)
    pick = pal[rng.integers(len(pal), size=sx.shape)]
    under = img[np.clip(sy, 0, h - 1).astype(int), np.clip(sx, 0, w - 1).astype(int)]
    col = 0.55 * pick + 0.45 * under
    gdir = rng.normal(size=(2,) + sx.shape) / cell
    xs, ys = np.arange(w, dtype=np.float32)[None, :], np.arange(h, dtype=np.float32)[:, None]
    d1, d2 = np.full((h, w), np.inf), np.full((h, w), np.inf)
    out = np.zeros_like(img)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            sel = np.ix_(iy + dy, ix + dx)
            ddx, ddy = xs - sx[sel], ys - sy[sel]
            d = np.sqrt(ddx * ddx + ddy * ddy)
            nearer = d < d1
            d2 = np.where(nearer, d1, np.minimum(d2, d))
            d1 = np.where(nearer, d, d1)
            shade = np.clip(0.9 + 0.5 * (ddx * gdir[0][sel] + ddy * gdir[1][sel]), 0.5, 1.3)
            out = np.where(nearer[..., None], col[sel] * shade[..., None], out)
    edge = d2 - d1 < max(1.0, cell * 0.05)
    return np.where(edge[..., None], pal.min(0) * 0.5, out)


def _painting(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A painting-like image: palette underpainting + one of five styles + canvas texture."""
    pal = _palette(rng)
    tiles = [_noise_tile(rng) for _ in range(2)]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    unit = max(width, height) / 640.0
    scale = rng.uniform(0.15, 0.6) / unit
    warp = _sample(tiles[1], x * scale * 0.5, y * scale * 0.5) * rng.uniform(20, 80) * unit
    layout = rng.uniform(0.0, 0.7)  # how much a landscape-like top-to-bottom composition dominates
    field = (1 - layout) * _sample(tiles[0], (x + warp) * scale, (y - warp) * scale) + layout * (
        y / height + 0.1 * np.sin(x / width * rng.uniform(2, 9) + rng.uniform(0, 6)))
    img = _pmap(field, pal)
    base_angle, swirl = rng.uniform(0, np.pi), rng.uniform(0.5, 3.0)

    def flow(cx, cy):
        return base_angle + swirl * np.pi * _sample(tiles[1], cx * scale * 0.3, cy * scale * 0.3)

    def from_under(cx, cy):
        c = img[np.clip(cy, 0, height - 1).astype(int), np.clip(cx, 0, width - 1).astype(int)]
        return np.clip(c * rng.uniform(0.8, 1.2, cx.shape + (1,)) + rng.normal(0, 0.04, cx.shape + (3,)), 0, 1)

    def towards_palette(cx, cy):
        return 0.6 * from_under(cx, cy) + 0.4 * pal[rng.integers(len(pal), size=cx.shape)]

    family = int(rng.integers(5))
    if family == 0:  # impressionist: layers of short strokes along a flow field
        for cell in (18, 11, 7):
            c = cell * unit * rng.uniform(0.8, 1.3)
            img = _strokes(img, rng, c, 1.9 * c, 0.6 * c, flow, from_under)
    elif family == 1:  # pointillist: dots of pure palette colours over a pale ground
        img = 0.6 * img + 0.4 * pal[np.argmax(pal.sum(1))]
        for cell, src in ((10, from_under), (6.5, towards_palette)):
            c = max(cell * unit, 2.0)
            img = _strokes(img, rng, c, 0, 1.3 * c, flow, src, round_dots=True, density=0.8)
    elif family == 2:  # cubist facets
        img = _facets(img, rng, rng.uniform(35, 90) * unit, pal)
    elif family == 3:  # watercolour washes with pigment pooling at the rims, on paper
        img = np.ones_like(img) * np.array([0.96, 0.94, 0.88])
        for i in range(int(rng.integers(3, 8))):
            sc, off = scale * rng.uniform(0.5, 2.0), rng.uniform(0, 256, 2)
            f = _sample(tiles[i % 2], x * sc + off[0], y * sc + off[1])
            th = rng.uniform(0.4, 0.7)
            m = _smooth(th, th + 0.04, f) * (1 + 0.6 * np.exp(-((f - th - 0.03) / 0.02) ** 2))
            img = img * (1 - (rng.uniform(0.3, 0.7) * m)[..., None] * (1 - pal[rng.integers(len(pal))]))
        img = img * (0.93 + 0.07 * _sample(tiles[0], x * 2.0, y * 2.0))[..., None]
    else:  # expressionist: swirling colour bands overpainted with long strokes
        theta, freq = rng.uniform(0, np.pi), rng.uniform(0.02, 0.08) / unit
        band = np.sin(freq * (x * np.cos(theta) + y * np.sin(theta)) + warp * 0.15) * 0.5 + 0.5
        img = _pmap(band, pal)
        c = 14 * unit
        img = _strokes(img, rng, c, 2.0 * c, 0.45 * c, lambda cx, cy: flow(cx, cy) + theta, from_under)
    weave = 0.95 + 0.05 * np.sin(x * 1.9) * np.sin(y * 1.9)
    return np.clip(img * (weave * (0.94 + 0.08 * _sample(tiles[1], x * 4.0, y * 4.0)))[..., None], 0, 1)


# ----------------------------------------------------------------------------- writers
def _write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path, compress_level=1)


def _write_u16(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path, compress_level=1)


def _write_list(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


# ----------------------------------------------------------------------------- products
@dataclass
class WorldConfig:
    """Counts and image sizes (width, height) of every product; presets fill them in."""

    vkitti_worlds: int
    vkitti_frames: int
    variants: tuple
    vkitti_size: tuple
    kitti_drives: int
    kitti_frames: int
    kitti_size: tuple
    lidar_azimuths: int
    nyu_rooms: int
    nyu_size: tuple
    style_images: int
    style_size: tuple

    def __post_init__(self) -> None:
        self.variants = tuple(self.variants)
        unknown = set(self.variants) - set(VARIANT_NAMES)
        if unknown or not self.variants:
            raise ValueError(f"variants must be a non-empty subset of {VARIANT_NAMES}, got {self.variants}")
        for name in ("vkitti_size", "kitti_size", "nyu_size", "style_size"):
            size = tuple(int(v) for v in getattr(self, name))
            if len(size) != 2 or min(size) < 8:
                raise ValueError(f"{name} must be (width, height) of at least 8 pixels, got {size}")
            setattr(self, name, size)


@lru_cache(maxsize=2)
def _vkitti_world(seed: int, world: int, frames: int) -> tuple[_Scene, float, dict]:
    """Scene, metres per frame and all variant lights of one vKITTI world (cached per process)."""
    rng = _rng(seed, _S_VKITTI, world)
    step = rng.uniform(0.8, 2.0)
    scene = _street(rng, frames * step + 10)
    lights = {v: _draw_light(v, _rng(seed, _S_LIGHT, world, i)) for i, v in enumerate(VARIANT_NAMES)}
    return scene, step, lights


def _vkitti_frame(root: Path, seed: int, cfg: WorldConfig, world: int, frame: int) -> list[str]:
    """One frame of a vKITTI world: geometry rendered once, shaded once per variant."""
    scene, step, lights = _vkitti_world(seed, world, cfg.vkitti_frames)
    w, h = cfg.vkitti_size
    rot, centre = _street_pose(scene.info["path"], frame, step)
    cam = Camera(*_scaled(VKITTI_K, (w, h), OUTDOOR_REF_SIZE), w, h, rotation=rot, centre=centre)
    hits, dirs = _render(scene, cam, CAMERA_FAR)
    albedo, kind = _albedo(scene, hits)
    depth = np.where(hits.obj == SKY, VKITTI_SKY, np.minimum(np.round(hits.t * 100.0), VKITTI_SKY))
    shade = _street_shader(scene, hits, dirs, albedo, kind)
    wid, name, lines = f"{world + 1:04d}", f"{frame:05d}.png", []
    for v in cfg.variants:
        _write_rgb(root / "rgb" / wid / v / name, shade(lights[v], _rng(seed, _S_NOISE, 0, world, frame,
                                                                         VARIANT_NAMES.index(v))))
        dpath = root / "depth" / wid / v / name
        if v == cfg.variants[0]:
            _write_u16(dpath, depth)
        else:  # identical geometry: identical depth file
            dpath.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / "depth" / wid / cfg.variants[0] / name, dpath)
        lines.append(f"rgb/{wid}/{v}/{name} depth/{wid}/{v}/{name}")
    return lines


@lru_cache(maxsize=2)
def _kitti_drive(seed: int, drive: int, frames: int) -> tuple[_Scene, float, dict]:
    """Scene (different from every vKITTI world), metres per raw frame and lighting of a drive."""
    rng = _rng(seed, _S_KITTI, drive)
    step = rng.uniform(0.6, 1.4)
    scene = _street(rng, frames * KITTI_FRAME_STRIDE * step + 10)
    light = _draw_light(["clone", "clone", "morning", "overcast"][rng.integers(4)], rng)
    return scene, step, light


def _kitti_paths(drive: int, frame: int) -> tuple[str, str, str]:
    base = f"{KITTI_DATE}/{KITTI_DATE}_drive_{drive + 1:04d}_sync"
    name = f"{frame * KITTI_FRAME_STRIDE:010d}"
    return (f"{base}/image_02/data/{name}.png", f"{base}/image_03/data/{name}.png",
            f"{base}/velodyne_points/data/{name}.bin")


def _write_kitti_calib(root: Path, seed: int, cfg: WorldConfig) -> None:
    cam_txt, velo_txt = _calib_text(_kitti_rig(seed, cfg.kitti_size))
    (root / KITTI_DATE).mkdir(parents=True, exist_ok=True)
    (root / KITTI_DATE / "calib_cam_to_cam.txt").write_text(cam_txt)
    (root / KITTI_DATE / "calib_velo_to_cam.txt").write_text(velo_txt)


def _kitti_frame(root: Path, seed: int, cfg: WorldConfig, drive: int, frame: int) -> list[str]:
    """Stereo pair (image_02, image_03) and velodyne scan of one KITTI frame."""
    scene, step, light = _kitti_drive(seed, drive, cfg.kitti_frames)
    rig = _kitti_rig(seed, cfg.kitti_size)
    rot, centre = _street_pose(scene.info["path"], frame * KITTI_FRAME_STRIDE, step)
    left, right, velo = _kitti_paths(drive, frame)
    rng = _rng(seed, _S_NOISE, 1, drive, frame)
    for cam, rel in (("02", left), ("03", right)):
        hits, dirs = _render(scene, _kitti_camera(rig, rot, centre, cam), CAMERA_FAR)
        albedo, kind = _albedo(scene, hits)
        _write_rgb(root / rel, _camera_look(_street_shader(scene, hits, dirs, albedo, kind)(light, rng), rng))
    (root / velo).parent.mkdir(parents=True, exist_ok=True)
    _scan(scene, _kitti_lidar(rig, rot, centre, cfg.lidar_azimuths), rng).tofile(root / velo)
    return [f"{left} {right} {KITTI_DATE} {velo}"]


def _nyu_room(root: Path, seed: int, cfg: WorldConfig, room: int) -> list[str]:
    """One furnished room; depth is z-depth in millimetres (0 would mark invalid pixels)."""
    scene = _room(_rng(seed, _S_NYU, room))
    hits, _ = _render(scene, _nyu_camera(scene, cfg.nyu_size), 1e3)
    albedo, kind = _albedo(scene, hits)
    rgb = _shade_room(scene, hits, albedo, kind, _rng(seed, _S_NOISE, 2, room))
    depth = np.where(np.isfinite(hits.t), np.clip(np.round(hits.t * 1000.0), 1, 65535), 0)
    colors, depth_name = f"data/nyu2_test/{room:05d}_colors.png", f"data/nyu2_test/{room:05d}_depth.png"
    _write_rgb(root / colors, rgb)
    _write_u16(root / depth_name, depth)
    return [f"{colors},{depth_name}"]


def _style_image(root: Path, seed: int, cfg: WorldConfig, index: int) -> list[str]:
    rel = f"images/{index:05d}.png"
    _write_rgb(root / rel, _painting(_rng(seed, _S_STYLE, index), *cfg.style_size))
    return [rel]


def _run_task(task: tuple) -> list[str]:
    fn, *args = task
    return fn(*args)


# ----------------------------------------------------------------------------- public API
def generate_world(out_dir: str | Path, seed: int = 0, preset: str = "default", progress: bool = True, *,
                   vkitti_worlds: int | None = None, vkitti_frames: int | None = None,
                   variants: tuple[str, ...] | list[str] | None = None,
                   vkitti_size: tuple[int, int] | None = None, kitti_drives: int | None = None,
                   kitti_frames: int | None = None, kitti_size: tuple[int, int] | None = None,
                   lidar_azimuths: int | None = None, nyu_rooms: int | None = None,
                   nyu_size: tuple[int, int] | None = None, style_images: int | None = None,
                   style_size: tuple[int, int] | None = None, workers: int | None = None) -> dict:
    """Render the sample world into ``out_dir`` and return the manifest (also ``world.json``).

    ``preset`` ("default" or "tiny") sets counts and sizes; any keyword given overrides it.
    Sizes are (width, height); intrinsics are scaled with them.  Frames are independent tasks
    run on ``workers`` processes (default: all CPU cores); the same seed and settings reproduce
    byte-identical files whatever the number of workers.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    if int(seed) < 0:
        raise ValueError("seed must be a non-negative integer")
    overrides = {k: v for k, v in dict(
        vkitti_worlds=vkitti_worlds, vkitti_frames=vkitti_frames, variants=variants, vkitti_size=vkitti_size,
        kitti_drives=kitti_drives, kitti_frames=kitti_frames, kitti_size=kitti_size,
        lidar_azimuths=lidar_azimuths, nyu_rooms=nyu_rooms, nyu_size=nyu_size, style_images=style_images,
        style_size=style_size).items() if v is not None}
    cfg = WorldConfig(**{**PRESETS[preset], **overrides})
    seed, out = int(seed), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_kitti_calib(out / "kitti", seed, cfg)
    tasks = {"vkitti": [(_vkitti_frame, out / "vkitti", seed, cfg, w, f)
                        for w in range(cfg.vkitti_worlds) for f in range(cfg.vkitti_frames)],
             "kitti": [(_kitti_frame, out / "kitti", seed, cfg, d, f)
                       for d in range(cfg.kitti_drives) for f in range(cfg.kitti_frames)],
             "nyu": [(_nyu_room, out / "nyu", seed, cfg, i) for i in range(cfg.nyu_rooms)],
             "style": [(_style_image, out / "style", seed, cfg, i) for i in range(cfg.style_images)]}
    order = [(name, task) for name, todo in tasks.items() for task in todo]
    workers = max(1, min(workers or os.cpu_count() or 1, len(order)))
    lines: dict[str, list[str]] = {name: [] for name in tasks}
    with tqdm(total=len(order), disable=not progress, desc="sample world", unit="frame") as bar, \
            (ProcessPoolExecutor(workers) if workers > 1 else nullcontext()) as pool:
        results = pool.map(_run_task, [t for _, t in order]) if pool else map(_run_task, [t for _, t in order])
        for (name, _), got in zip(order, results):
            lines[name] += got
            bar.update()
    manifest: dict = {"seed": seed, "preset": preset}
    for name, list_name in (("vkitti", "train.txt"), ("kitti", "test.txt"), ("nyu", "nyu2_test.csv"),
                            ("style", "list.txt")):
        _write_list(out / name / list_name, lines[name])
        manifest[name] = {"root": name, "list": f"{name}/{list_name}", "count": len(lines[name])}
    manifest["vkitti"].update(worlds=[f"{i + 1:04d}" for i in range(cfg.vkitti_worlds)],
                              variants=list(cfg.variants), size=list(cfg.vkitti_size),
                              depth_unit="cm", sky_depth=VKITTI_SKY)
    manifest["kitti"].update(date=KITTI_DATE, drives=cfg.kitti_drives, size=list(cfg.kitti_size))
    manifest["nyu"].update(size=list(cfg.nyu_size), depth_unit="mm", invalid_depth=0)
    manifest["style"].update(size=list(cfg.style_size))
    manifest["config"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
    (out / "world.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest

