"""Synthetic street-scene clips with large, distinct anomalous events (numpy drawing only).

A clip is a calm normal scene (sky/wall, grey road, a few small pedestrians and cars moving slowly,
mild sensor noise; colours drawn per seed). An event is drawn on top of that scene exactly in the
frames ``[start, end)`` of ``event_span``; every other frame is pixel-identical to the normal clip
with the same seed. Each event covers roughly 20-50% of the frame with its own colours and motion.
"""

from __future__ import annotations

import numpy as np

EVENT_KINDS: tuple[str, ...] = ("Fighting", "Shooting", "Vandalism", "Stealing", "Explosion", "RoadAccidents")

_Canvas = np.ndarray  # (H, W, 3) float32


class _Painter:
    """Tiny clipped rasteriser on a float32 canvas."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.yy, self.xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def rect(self, c: _Canvas, y0: float, x0: float, y1: float, x1: float, color, alpha: float = 1.0) -> None:
        ya, yb = max(0, round(y0)), min(self.h, round(y1))
        xa, xb = max(0, round(x0)), min(self.w, round(x1))
        if ya < yb and xa < xb:
            region = c[ya:yb, xa:xb]
            region[:] = (1 - alpha) * region + alpha * np.asarray(color, np.float32)

    def mask(self, c: _Canvas, m: np.ndarray, color, alpha: float = 1.0) -> None:
        if alpha >= 1.0:
            c[m] = color
        else:
            c[m] = (1 - alpha) * c[m] + alpha * np.asarray(color, np.float32)

    def disc(self, c: _Canvas, cy: float, cx: float, r: float, color, alpha: float = 1.0) -> None:
        self.mask(c, (self.yy - cy) ** 2 + (self.xx - cx) ** 2 <= r * r, color, alpha)

    def line(self, c: _Canvas, y0: float, x0: float, y1: float, x1: float, width: float, color) -> None:
        dy, dx = y1 - y0, x1 - x0
        n2 = dy * dy + dx * dx or 1.0
        t = np.clip(((self.yy - y0) * dy + (self.xx - x0) * dx) / n2, 0, 1)
        d2 = (self.yy - (y0 + t * dy)) ** 2 + (self.xx - (x0 + t * dx)) ** 2
        self.mask(c, d2 <= (width / 2) ** 2, color)

    def figure(self, c: _Canvas, foot_y: float, cx: float, height: float, width: float, color) -> None:
        """A person: body block plus a round head, feet at ``foot_y``."""
        head = width * 0.45
        self.rect(c, foot_y - height + 2 * head, cx - width / 2, foot_y, cx + width / 2, color)
        self.disc(c, foot_y - height + head, cx, head, color)


def _muted(rng: np.random.Generator, lo: float = 60, hi: float = 170) -> np.ndarray:
    """A low-saturation colour, so normal objects never look like an event's vivid colours."""
    base = rng.uniform(lo, hi)
    return np.clip(base + rng.uniform(-25, 25, 3), 0, 255).astype(np.float32)


class _Scene:
    """The normal street scene; all randomness fixed at construction."""

    def __init__(self, h: int, w: int, rng: np.random.Generator) -> None:
        self.h, self.w = h, w
        self.horizon = int(h * rng.uniform(0.45, 0.6))
        self.sky = _muted(rng, 110, 200)
        self.wall = _muted(rng, 70, 150)
        self.wall_top = int(self.horizon * rng.uniform(0.15, 0.4))
        self.road = np.full(3, rng.uniform(85, 115), np.float32)
        self.lane = np.full(3, rng.uniform(170, 200), np.float32)
        n_ped, n_car = int(rng.integers(2, 5)), int(rng.integers(1, 3))
        self.peds = [
            dict(
                x=rng.uniform(0, w), v=rng.uniform(0.1, 0.4) * rng.choice([-1, 1]),
                y=self.horizon + rng.uniform(0.02, 0.12) * h, hgt=h * rng.uniform(0.12, 0.17),
                col=_muted(rng, 40, 200), phase=rng.uniform(0, 6.3),
            )
            for _ in range(n_ped)
        ]
        self.cars = [
            dict(
                x=rng.uniform(0, w), v=rng.uniform(0.3, 0.8) * rng.choice([-1, 1]),
                y=self.horizon + (0.3 + 0.3 * i) * (h - self.horizon), col=_muted(rng, 50, 190),
            )
            for i in range(n_car)
        ]

    def draw(self, p: _Painter, t: int) -> _Canvas:
        h, w = self.h, self.w
        c = np.empty((h, w, 3), np.float32)
        c[: self.wall_top] = self.sky
        c[self.wall_top : self.horizon] = self.wall
        c[self.horizon :] = self.road
        lane_y = self.horizon + 0.55 * (h - self.horizon)
        for x in range(0, w, max(8, w // 8)):
            p.rect(c, lane_y, x, lane_y + max(1, h // 80), x + max(4, w // 20), self.lane)
        span = w * 1.2
        for car in self.cars:
            x = (car["x"] + car["v"] * t) % span - 0.1 * w
            cw, ch = 0.12 * w, 0.08 * h
            p.rect(c, car["y"] - ch, x - cw / 2, car["y"], x + cw / 2, car["col"])
        for ped in self.peds:
            x = (ped["x"] + ped["v"] * t) % span - 0.1 * w
            bob = 0.5 * np.sin(ped["phase"] + 0.3 * t)
            p.figure(c, ped["y"] + bob, x, ped["hgt"], ped["hgt"] * 0.35, ped["col"])
        return c


class _Event:
    """One event; ``draw`` gets the local progress ``k`` (frame index inside the span) and length."""

    def __init__(self, kind: str, h: int, w: int, horizon: int, rng: np.random.Generator) -> None:
        self.kind, self.h, self.w, self.horizon, self.rng = kind, h, w, horizon, rng
        self.side = rng.choice([-1.0, 1.0])
        self.cx = w * rng.uniform(0.4, 0.6)
        self.cy = h * rng.uniform(0.4, 0.6)
        self.seed = int(rng.integers(2**31))
        # Pre-drawn graffiti strokes / cracks for vandalism, ordered by appearance.
        self.strokes = [
            (rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1), rng.integers(3))
            for _ in range(24)
        ]

    def draw(self, p: _Painter, c: _Canvas, k: int, n: int) -> None:
        getattr(self, "_" + self.kind.lower())(p, c, k, max(n, 1))

    def _jit(self, k: int, scale: float) -> np.ndarray:
        return np.random.default_rng([self.seed, k]).uniform(-scale, scale, 4)

    def _fighting(self, p: _Painter, c: _Canvas, k: int, n: int) -> None:
        h, w = self.h, self.w
        j = self._jit(k, 0.07 * w)
        foot = h * 0.95
        fh, fw = 0.7 * h, 0.24 * w
        xa, xb = self.cx - 0.1 * w + j[0], self.cx + 0.1 * w + j[1]
        p.figure(c, foot + j[2] * 0.2, xa, fh, fw, (230, 20, 20))
        p.figure(c, foot + j[3] * 0.2, xb, fh, fw, (150, 0, 0))
        arm_y = foot - 0.55 * fh
        p.line(c, arm_y + j[2], xa, arm_y - j[3], xb + 0.15 * w * np.sign(j[0]), 0.06 * h, (255, 60, 60))
        p.line(c, arm_y - j[1], xb, arm_y + j[0], xa - 0.15 * w * np.sign(j[1]), 0.06 * h, (120, 0, 0))

    def _shooting(self, p: _Painter, c: _Canvas, k: int, n: int) -> None:
        h, w = self.h, self.w
        q = k / max(n - 1, 1)
        foot = h * 0.95
        sx = w * (0.5 - self.side * 0.32)
        vx = w * (0.5 + self.side * 0.25)
        p.figure(c, foot, sx, 0.7 * h, 0.2 * w, (15, 15, 30))
        gy = foot - 0.45 * h
        gun_x = sx + self.side * 0.16 * w
        p.line(c, gy, sx, gy, gun_x, 0.05 * h, (15, 15, 30))
        # Victim falls: tall and bright -> lying flat and dark.
        fall = min(1.0, q * 1.6)
        vh = 0.7 * h * (1 - fall) + 0.16 * h * fall
        vw = 0.2 * w * (1 - fall) + 0.45 * w * fall
        vcol = np.array([240, 220, 60]) * (1 - fall) + np.array([60, 10, 10]) * fall
        p.rect(c, foot - vh, vx - vw / 2, foot, vx + vw / 2, vcol)
        if k % 3 != 2:  # muzzle-flash bursts
            r = 0.22 * min(h, w) * (1.0 if k % 3 == 0 else 0.7)
            p.disc(c, gy, gun_x + self.side * r * 0.6, r, (255, 255, 255))
            p.line(c, gy, gun_x, foot - vh * 0.6, vx, 0.03 * h, (255, 255, 230))
            p.rect(c, 0, 0, h, w, (255, 255, 255), alpha=0.25)

    def _vandalism(self, p: _Painter, c: _Canvas, k: int, n: int) -> None:
        h, w = self.h, self.w
        q = k / max(n - 1, 1)
        wall_b = self.horizon
        # Shattered wall panel: white jagged grid spreading from the centre.
        reach = 0.35 + 0.65 * q
        x0, x1 = w * (0.5 - 0.5 * reach), w * (0.5 + 0.5 * reach)
        p.rect(c, 0.05 * h, x0, wall_b, x1, (40, 40, 60))
        vis = int(6 + 18 * q)
        colors = ((0, 255, 255), (255, 0, 255), (255, 255, 255))
        for ya, xa, yb, xb, ci in self.strokes[:vis]:
            p.line(c, 0.05 * h + ya * (wall_b - 0.05 * h), x0 + xa * (x1 - x0),
                   0.05 * h + yb * (wall_b - 0.05 * h), x0 + xb * (x1 - x0), 0.04 * h, colors[ci])
        j = self._jit(k, 0.04 * w)
        p.figure(c, h * 0.95, self.cx + j[0], 0.75 * h, 0.22 * w, (240, 0, 220))
        arm_y = h * 0.95 - 0.55 * 0.75 * h
        p.line(c, arm_y, self.cx + j[0], arm_y - 0.15 * h + j[1], self.cx + 0.2 * w * self.side, 0.06 * h,
               (240, 0, 220))

    def _stealing(self, p: _Painter, c: _Canvas, k: int, n: int) -> None:
        h, w = self.h, self.w
        q = k / max(n - 1, 1)
        foot = h * 0.95
        grab = 0.3
        start_x = w * (0.5 - self.side * 0.15)
        box_x0 = w * (0.5 + self.side * 0.1)
        if q < grab:  # approach the box
            fx = start_x + (box_x0 - start_x) * (q / grab)
            bx = box_x0
        else:  # run away with it, fast
            run = (q - grab) / (1 - grab)
            fx = box_x0 + self.side * run * 0.3 * w
            bx = fx + self.side * 0.05 * w
        bob = 0.03 * h * np.sin(k * 1.3)
        p.figure(c, foot + bob, fx, 0.75 * h, 0.24 * w, (10, 10, 10))
        bs = 0.3 * min(h, w)
        by = foot - 0.35 * h if q >= grab else foot - bs / 2
        p.rect(c, by - bs / 2, bx - bs / 2, by + bs / 2, bx + bs / 2, (20, 255, 40))

    def _explosion(self, p: _Painter, c: _Canvas, k: int, n: int) -> None:
        h, w = self.h, self.w
        q = k / max(n - 1, 1)
        m = min(h, w)
        r = m * (0.32 + 0.3 * min(1.0, 2 * q))
        flick = 1.0 if k % 2 == 0 else 0.8
        p.rect(c, 0, 0, h, w, (255, 150, 40), alpha=0.3 * flick)
        p.disc(c, self.cy, self.cx, r * 1.15, (255, 90, 0))
        p.disc(c, self.cy, self.cx, r * 0.85, np.array([255, 170, 20]) * flick)
        p.disc(c, self.cy, self.cx, r * 0.5, np.array([255, 255, 150]) * flick)

    def _roadaccidents(self, p: _Painter, c: _Canvas, k: int, n: int) -> None:
        h, w = self.h, self.w
        q = k / max(n - 1, 1)
        hit = 0.35
        cw, ch = 0.4 * w, 0.3 * h
        y = h * 0.9
        d = (1 - q / hit) * 0.3 * w if q < hit else 0.0  # fast approach from both sides
        xa, xb = w / 2 - cw / 2 - d, w / 2 + cw / 2 + d
        squash = 0.0 if q < hit else 0.15 * cw
        p.rect(c, y - ch, xa - cw / 2 + squash, y, xa + cw / 2, (30, 80, 255))
        p.rect(c, y - ch, xb - cw / 2, y, xb + cw / 2 - squash, (0, 220, 220))
        for xx in (xa - cw / 3, xa + cw / 4, xb - cw / 4, xb + cw / 3):
            p.disc(c, y, xx, 0.07 * h, (10, 10, 10))
        if q >= hit:
            s = (q - hit) / (1 - hit)
            rng = np.random.default_rng([self.seed, k])
            for _ in range(6):
                oy, ox = rng.uniform(-0.15, 0.05) * h, rng.uniform(-0.2, 0.2) * w
                p.disc(c, y - ch - 0.1 * h * s + oy, w / 2 + ox, (0.15 + 0.2 * s) * min(h, w),
                       (200, 200, 205), alpha=0.85)


def render_clip(
    event: str | None,
    num_frames: int,
    size: tuple[int, int] = (96, 128),
    event_span: tuple[int, int] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Render a ``(T, H, W, 3)`` uint8 RGB clip; deterministic given ``seed``.

    ``event=None`` gives the normal scene throughout. Otherwise ``event`` (one of ``EVENT_KINDS``)
    is drawn in frames ``[start, end)`` of ``event_span`` (default: the whole clip); the other
    frames equal the normal clip of the same seed exactly.
    """
    if event is not None and event not in EVENT_KINDS:
        raise ValueError(f"unknown event {event!r}; expected one of {EVENT_KINDS}")
    if num_frames < 0:
        raise ValueError("num_frames must be >= 0")
    h, w = size
    start, end = (0, num_frames) if event_span is None else event_span
    start, end = max(0, start), min(num_frames, end)
    painter = _Painter(h, w)
    scene = _Scene(h, w, np.random.default_rng([seed, 0]))
    ev = _Event(event, h, w, scene.horizon, np.random.default_rng([seed, 1])) if event else None
    out = np.empty((num_frames, h, w, 3), np.uint8)
    for t in range(num_frames):
        c = scene.draw(painter, t)
        if ev is not None and start <= t < end:
            ev.draw(painter, c, t - start, end - start)
        c += np.random.default_rng([seed, 2, t]).normal(0, 2.5, c.shape).astype(np.float32)
        out[t] = np.clip(c, 0, 255).astype(np.uint8)
    return out
