"""Vectorised ray casting for the procedural sample world (see ``sample_world/world.py``).

Every scene is made of axis-aligned boxes plus either an infinite ground plane (streets) or
an enclosing room shell (indoor), so each pixel / lidar beam is intersected analytically with
numpy slab tests.  RGB, depth maps and velodyne scans are all derived from the same hit
buffers, which is what makes the rendered data self-consistent.

Frames used here:
  * world: x right (east), y forward along the road (north), z up; right-handed, metres.
  * camera: x right, y down, z forward (the rectified KITTI / OpenCV convention).
  * velodyne: x forward, y left, z up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SKY = -1
"""Object id of rays that hit nothing."""
BASE = 0
"""Object id of the ground plane (outdoor) or the room shell (indoor); boxes are ``1 + index``."""

_CORNER_BITS = np.array([[(i >> a) & 1 for a in range(3)] for i in range(8)], dtype=bool)
_EDGES = np.array([(i, i | (1 << a)) for i in range(8) for a in range(3) if not (i >> a) & 1])


@dataclass
class Hits:
    """Nearest-hit buffers of one ray grid.

    ``t`` is the ray parameter (camera rays have unit forward component, so ``t`` is the
    z-depth; lidar rays are unit vectors, so ``t`` is the range), ``inf`` where nothing was hit.
    ``face`` is ``2 * axis + (normal points to +axis)`` or -1, ``point`` the (3, H, W) world hit.
    """

    t: np.ndarray
    obj: np.ndarray
    face: np.ndarray
    point: np.ndarray

    @property
    def axis(self) -> np.ndarray:
        """Axis (0, 1, 2) of the hit face's normal; -1 on sky."""
        return np.where(self.face >= 0, self.face // 2, -1)

    @property
    def normal_sign(self) -> np.ndarray:
        """+1 / -1 orientation of the hit face's normal along its axis (0 on sky)."""
        return np.where(self.face >= 0, 2.0 * (self.face % 2) - 1.0, 0.0).astype(np.float32)


def box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, 8, 3) corners of N axis-aligned boxes."""
    return np.where(_CORNER_BITS[None], hi[:, None, :], lo[:, None, :])


def rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world rotation: yaw turns left about world z, pitch looks up, roll about view axis."""
    base = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # cam x,y,z -> world
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    r_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])  # about camera z
    return rz @ rx @ base @ r_roll


@dataclass
class Camera:
    """Pinhole camera.  Column ``c`` has its centre at ``u = c + pixel_offset``.

    ``pixel_offset = 1`` matches the KITTI evaluation rule ``pixel = round(u) - 1``, so that
    velodyne points projected that way land exactly on the pixel whose ray hit them.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    rotation: np.ndarray
    centre: np.ndarray
    pixel_offset: float = 0.0

    def rays(self) -> np.ndarray:
        """(3, H, W) float32 world directions with unit camera-z component (t == z-depth)."""
        u = np.arange(self.width, dtype=np.float64) + self.pixel_offset
        v = np.arange(self.height, dtype=np.float64) + self.pixel_offset
        x = np.broadcast_to(((u - self.cx) / self.fx)[None, :], (self.height, self.width))
        y = np.broadcast_to(((v - self.cy) / self.fy)[:, None], (self.height, self.width))
        cam = np.stack([x, y, np.ones_like(x)])
        return np.einsum("ij,jhw->ihw", self.rotation, cam).astype(np.float32)

    def tiles(self, lo: np.ndarray, hi: np.ndarray, far: float, near: float = 0.05) -> list[tuple]:
        """Screen rectangles ``(k, r0, r1, c0, c1)`` that can contain box ``k``.

        Each box is clipped against the near plane (corners in front plus edge crossings) and
        its projection bounded, so the slab test only runs on the pixels that may see it.
        """
        if len(lo) == 0:
            return []
        pc = (box_corners(lo, hi) - self.centre) @ self.rotation  # world -> camera
        z = pc[..., 2]
        a, b = pc[:, _EDGES[:, 0]], pc[:, _EDGES[:, 1]]
        za, zb = a[..., 2], b[..., 2]
        crossing = (za - near) * (zb - near) < 0
        s = np.where(crossing, (near - za) / np.where(crossing, zb - za, 1.0), 0.0)
        pts = np.concatenate([pc, a + s[..., None] * (b - a)], axis=1)
        ok = np.concatenate([z >= near, crossing], axis=1)
        zz = np.where(ok, pts[..., 2], 1.0)
        u = self.fx * pts[..., 0] / zz + self.cx - self.pixel_offset
        v = self.fy * pts[..., 1] / zz + self.cy - self.pixel_offset
        umin, umax = np.where(ok, u, np.inf).min(1), np.where(ok, u, -np.inf).max(1)
        vmin, vmax = np.where(ok, v, np.inf).min(1), np.where(ok, v, -np.inf).max(1)
        zmin = np.where(ok, zz, np.inf).min(1)
        keep = ok.any(1) & (zmin < far)
        c0 = np.clip(np.floor(np.where(keep, umin, 0)) - 1, 0, self.width).astype(int)
        c1 = np.clip(np.ceil(np.where(keep, umax, 0)) + 2, 0, self.width).astype(int)
        r0 = np.clip(np.floor(np.where(keep, vmin, 0)) - 1, 0, self.height).astype(int)
        r1 = np.clip(np.ceil(np.where(keep, vmax, 0)) + 2, 0, self.height).astype(int)
        keep &= (c1 > c0) & (r1 > r0)
        return [(int(k), r0[k], r1[k], c0[k], c1[k]) for k in np.flatnonzero(keep)]


@dataclass
class Lidar:
    """Spinning multi-beam lidar; rays form a (beams, azimuths) grid, azimuth from -pi to pi."""

    elevations_deg: np.ndarray
    azimuths: int
    rotation: np.ndarray  # velodyne -> world
    centre: np.ndarray

    def _azimuth(self) -> np.ndarray:
        step = 2 * np.pi / self.azimuths
        return -np.pi + (np.arange(self.azimuths) + 0.5) * step

    def rays(self) -> np.ndarray:
        """(3, B, A) float32 unit world directions (t == range)."""
        el = np.deg2rad(np.asarray(self.elevations_deg, dtype=np.float64))[:, None]
        az = self._azimuth()[None, :]
        velo = np.stack(np.broadcast_arrays(np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                            np.sin(el)))
        return np.einsum("ij,jba->iba", self.rotation, velo).astype(np.float32)

    def tiles(self, lo: np.ndarray, hi: np.ndarray, far: float) -> list[tuple]:
        """Azimuth column ranges per box (boxes around the sensor's vertical get all columns)."""
        n, beams = self.azimuths, len(self.elevations_deg)
        nearest = np.clip(self.centre, lo, hi)
        reach = np.linalg.norm(nearest - self.centre, axis=1) < far
        around = np.all((self.centre[:2] > lo[:, :2] - 0.5) & (self.centre[:2] < hi[:, :2] + 0.5), 1)
        pv = (box_corners(lo, hi) - self.centre) @ self.rotation  # world -> velodyne
        centre_v = ((lo + hi) / 2 - self.centre) @ self.rotation
        ac = np.arctan2(centre_v[:, 1], centre_v[:, 0])
        da = np.angle(np.exp(1j * (np.arctan2(pv[..., 1], pv[..., 0]) - ac[:, None])))
        step = 2 * np.pi / n
        j0 = np.floor((ac + da.min(1) + np.pi) / step - 0.5).astype(int) - 1
        j1 = np.ceil((ac + da.max(1) + np.pi) / step - 0.5).astype(int) + 2
        out = []
        for k in np.flatnonzero(reach):
            if around[k] or j1[k] - j0[k] >= n:
                out.append((int(k), 0, beams, 0, n))
                continue
            a, b = j0[k], j1[k]
            if a < 0:
                out += [(int(k), 0, beams, a + n, n), (int(k), 0, beams, 0, b)]
            elif b > n:
                out += [(int(k), 0, beams, a, n), (int(k), 0, beams, 0, b - n)]
            else:
                out.append((int(k), 0, beams, a, b))
        return out


def cast(origin: np.ndarray, dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray,
         tiles: list[tuple], far: float, ground: bool = True,
         shell: tuple[np.ndarray, np.ndarray] | None = None) -> Hits:
    """Intersect a (3, H, W) ray grid sharing ``origin`` with the scene, keeping the nearest hit.

    ``ground`` adds the plane z = 0; ``shell`` (lo, hi) is a room the origin sits inside (hit
    from within).  Hits with ``t > far`` become sky.
    """
    o = [float(c) for c in origin]
    safe = np.where(np.abs(dirs) < 1e-9, np.float32(1e-9), dirs)
    inv = (1.0 / safe).astype(np.float32)
    shape = dirs.shape[1:]
    t = np.full(shape, np.inf, dtype=np.float32)
    obj = np.full(shape, SKY, dtype=np.int32)
    if ground and o[2] > 0:
        down = dirs[2] < 0
        t[down] = -o[2] * inv[2][down]
        obj[down] = BASE
    if shell is not None:
        exits = [np.maximum((float(shell[0][a]) - o[a]) * inv[a], (float(shell[1][a]) - o[a]) * inv[a])
                 for a in range(3)]
        t = np.minimum(np.minimum(exits[0], exits[1]), exits[2])
        obj[:] = BASE
    for k, r0, r1, c0, c1 in tiles:
        win = (slice(r0, r1), slice(c0, c1))
        tmin = tmax = None
        for a in range(3):
            ia = inv[a][win]
            p = (float(lo[k, a]) - o[a]) * ia
            q = (float(hi[k, a]) - o[a]) * ia
            near_a, far_a = np.minimum(p, q), np.maximum(p, q)
            tmin = near_a if tmin is None else np.maximum(tmin, near_a)
            tmax = far_a if tmax is None else np.minimum(tmax, far_a)
        tw = t[win]
        better = (tmin <= tmax) & (tmin > 1e-4) & (tmin < tw)
        tw[better] = tmin[better]
        obj[win][better] = k + 1
    gone = t > far
    t[gone] = np.inf
    obj[gone] = SKY
    return Hits(t=t, obj=obj, face=_faces(origin, dirs, t, obj, lo, hi, shell), point=_points(origin, dirs, t))


def _points(origin: np.ndarray, dirs: np.ndarray, t: np.ndarray) -> np.ndarray:
    tt = np.where(np.isfinite(t), t, 0.0).astype(np.float32)
    return np.asarray(origin, dtype=np.float32)[:, None, None] + dirs * tt


def _faces(origin, dirs, t, obj, lo, hi, shell) -> np.ndarray:
    """Face index per hit, found afterwards from where the hit point lies on its box."""
    face = np.full(t.shape, -1, dtype=np.int8)
    if shell is None:
        face[obj == BASE] = 5  # ground: +z
    idx = np.nonzero(obj > 0 if shell is None else obj >= 0)
    if not idx[0].size:
        return face
    k = obj[idx]  # row 0 of the tables is the shell (or unused)
    first = np.asarray(shell if shell is not None else (np.zeros(3), np.ones(3)), dtype=np.float64)
    centre = ((np.vstack([first[0][None], lo]) + np.vstack([first[1][None], hi])) / 2).astype(np.float32)
    half = np.maximum((np.vstack([first[1][None], hi]) - np.vstack([first[0][None], lo])) / 2, 1e-6)
    half = half.astype(np.float32)
    tt = t[idx]
    best = np.full(tt.shape, -1.0, dtype=np.float32)
    axis = np.zeros(tt.shape, dtype=np.int8)
    positive = np.zeros(tt.shape, dtype=bool)
    for a in range(3):
        q = (np.float32(origin[a]) + dirs[a][idx] * tt - centre[k, a]) / half[k, a]
        better = np.abs(q) > best
        best = np.where(better, np.abs(q), best)
        axis[better] = a
        positive = np.where(better, q > 0, positive)
    if shell is not None:
        positive = np.where(k == BASE, ~positive, positive)  # shell normals face inwards
    face[idx] = 2 * axis + positive
    return face
