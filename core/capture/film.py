"""Find a film photographed against its surroundings and rectify it.

A film on a light box or window is bounded by four long, straight brightness steps. Its
inside is anything but uniform, so thresholding fails where dark film areas meet a dark
background or where glare brightens the background; the straight steps survive both. So:
the image is smoothed along rows and along columns (texture and noise do not line up over
tens of pixels, a film edge does), the crests of the resulting steps are found, a Hough
transform proposes lines for each side, and every combination of one line per side is
scored by the share of its perimeter that runs along crests between its corners. Lines
from clutter or from the body inside the film lose: moving one side moves the corners of
the others off the film's edges. Ordinary radiographs offer too few straight crests to
reach the bar (through the capture step, 4 of the dataset's 5,232 images are cropped), so they
are left alone. A light box larger than the film shows as a bright frame whose outer edge is as
straight as the film's: a side whose inner band is as bright as the panel runs along the panel,
so the film is the outermost outline without such a side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MIN_SHARE = 0.20  # smaller "films" are more likely a bright object in a scene
MAX_SHARE = 0.92  # larger ones already fill the frame: cropping would gain nothing
SKEW_MIN_DEGREES = 2.0  # below this the film is cropped, not resampled
MAX_OUTPUT_SIDE = 1536  # bounds the rectified film's memory and warp time; model and display need far less
# Share of the perimeter running along straight step crests. Films photographed on dark or
# busy backgrounds score 0.86-1.0 (5th percentile 0.86); ordinary radiographs, whose ribs and
# outline offer some straight crests, at most ~0.82. A grayscale upload is far more likely an
# ordinary radiograph, so it has to clear the stricter bar.
MIN_SUPPORT = 0.85
MIN_SUPPORT_GRAY = 0.92
_MIN_SIDE_SUPPORT = 0.6  # ... and for each of its sides
_SUPPORT_SLACK = 0.08  # candidates this close to the best support compete on size
_RIDGE_STEP = 4  # gray levels of step (after smoothing along the edge) that an edge crest needs
_CENTRE_GAP = 0.12  # film sides stay this share of the frame away from its centre
_MAX_CONVERGENCE = 8.0  # degrees between opposite sides (keystone)
_RIM = 0.02  # share of the frame along its border where no corner may lie
_MAX_TILT = 25.0  # degrees a side may lean from its axis (perspective plus rotation)
_ANGLE_RANGE = (60.0, 120.0)  # interior angles of a film seen with that much skew
_LINES_PER_SIDE = 6
_SLACK = 1  # pixels across a line where a crest still counts as on it
# A phone lens bows a film's edges (barrel distortion, strongest at the corners), which takes them
# off one-pixel crests. Two pixels everywhere also cut "films" out of ordinary radiographs and
# moved good crops, so the wider search is only a second try (``core.capture.pipeline``).
BOWED_SLACKS = (_SLACK, 2)
_REFERENCE_SIDE = 512.0  # pixel sizes below are for an image this long; they scale with it
_ALONG_HALF = 8  # half-length of the smoothing along an edge
_SIDES = ("top", "right", "bottom", "left")
# A light box larger than its film shows as a bright frame around it, and the frame's outer edge
# is as straight as the film's. The panel is the brightest thing in such a photo: a side whose
# inner band is mostly this close to the photo's brightest level runs along the panel, not the film.
LIT_LEVEL = 0.8  # share of the frame's 99th-percentile gray level
_LIT_SIDE = 0.5  # share of a side's inner band that makes it a panel's edge
_LIT_DEPTH = 4  # pixels inside the side where the band is sampled (at the reference size)


@dataclass(frozen=True)
class FilmQuad:
    """A film's corners (top-left, top-right, bottom-right, bottom-left; x, y) in some image's pixels."""

    corners: np.ndarray  # (4, 2) float32
    share: float  # quadrilateral area / frame area
    support: float = 1.0  # share of the perimeter running along straight step crests

    @property
    def skew_degrees(self) -> float:
        """Largest deviation of a side from the horizontal or vertical it stands for."""
        return side_skew(self.corners)

    def scaled(self, sx: float, sy: float) -> FilmQuad:
        """The same quadrilateral in an image ``sx`` times wider and ``sy`` times taller (pixel centres kept)."""
        c = self.corners.astype(np.float64)
        out = np.stack([(c[:, 0] + 0.5) * sx - 0.5, (c[:, 1] + 0.5) * sy - 0.5], axis=1)
        return FilmQuad(out.astype(np.float32), self.share, self.support)


def side_skew(corners: np.ndarray) -> float:
    """Largest angle (degrees) between a side of the tl, tr, br, bl quadrilateral and its axis."""
    worst = 0.0
    for i in range(4):
        dx, dy = (corners[(i + 1) % 4] - corners[i]).astype(np.float64)
        horizontal = i % 2 == 0  # top and bottom sides run along x
        along, across = (abs(dx), abs(dy)) if horizontal else (abs(dy), abs(dx))
        worst = max(worst, math.degrees(math.atan2(across, along)))
    return worst


def interior_angles(corners: np.ndarray) -> np.ndarray:
    """Interior angles (degrees) at each corner of a (..., 4, 2) quadrilateral."""
    prev = np.roll(corners, 1, axis=-2) - corners
    nxt = np.roll(corners, -1, axis=-2) - corners
    cos = (prev * nxt).sum(-1) / (np.linalg.norm(prev, axis=-1) * np.linalg.norm(nxt, axis=-1) + 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@dataclass(frozen=True)
class _Lines:
    """Candidate lines for one side: points ``origin + t * direction``; ``inward`` points into the film."""

    origin: np.ndarray  # (K, 2)
    direction: np.ndarray  # (K, 2) unit
    inward: np.ndarray  # (K, 2) unit normal
    good: np.ndarray  # (K, T + 1) cumulative count of sampled positions on a step crest
    seen: np.ndarray  # (K, T + 1) cumulative count of sampled positions inside the frame
    lit: np.ndarray  # (K, T + 1) cumulative count of positions whose inner band is lit-panel bright
    t0: float  # parameter of the first sample
    dt: float  # sample spacing


def _axis_lines(ridges: np.ndarray, transposed: bool, min_votes: int) -> tuple[np.ndarray, np.ndarray]:
    """Strongest near-horizontal lines of a ridge image, as normal angles and rhos in original coordinates.

    Strongest first. For vertical sides the ridge image is passed transposed, so one angle
    range serves both.
    """
    found = cv2.HoughLines(
        ridges,
        1,
        np.pi / 180,  # 1° bins; the final line fit recovers the finer angle
        min_votes,
        min_theta=np.pi / 2 - math.radians(_MAX_TILT),
        max_theta=np.pi / 2 + math.radians(_MAX_TILT),
    )
    if found is None:
        return np.zeros(0), np.zeros(0)
    rho, theta = found[:, 0, 0].astype(np.float64), found[:, 0, 1].astype(np.float64)
    nx, ny = np.cos(theta), np.sin(theta)
    if transposed:
        nx, ny = ny, nx
    return np.arctan2(ny, nx), rho


def _split_sides(
    lines: tuple[np.ndarray, np.ndarray], centre: np.ndarray, before: str, after: str
) -> dict[str, list[tuple[float, float]]]:
    """Sort lines (strongest first) into the side before and after the frame centre, dropping near-duplicates.

    Radiographs yield hundreds of weak lines, so the greedy choice runs on arrays: each round
    keeps a side's strongest line left and drops its near-duplicates, at most
    ``_LINES_PER_SIDE`` rounds per side.
    """
    angle, rho = lines
    # Hough normals here point along +x or +y, so a positive offset puts the centre after the line.
    offset = np.cos(angle) * centre[0] + np.sin(angle) * centre[1] - rho
    sides: dict[str, list[tuple[float, float]]] = {}
    for name, members in ((before, offset > 0), (after, offset <= 0)):
        a, r = angle[members], rho[members]
        open_ = np.ones(len(a), bool)
        kept: list[tuple[float, float]] = []
        while len(kept) < _LINES_PER_SIDE and open_.any():
            i = int(np.argmax(open_))
            kept.append((float(a[i]), float(r[i])))
            open_ &= ~((np.abs(r - r[i]) < 6) & (np.abs(a - a[i]) < math.radians(3)))
        sides[name] = kept
    return sides


def _profile(ridges: np.ndarray, lines: list[tuple[float, float]], centre: np.ndarray, lit: np.ndarray,
             depth: int, slack: int) -> _Lines:
    """Sample ``ridges`` along each of ``lines`` (at least one): where does it run along a step's crest?

    Crests rather than step strength: a soft, curved edge (the body's outline) shows a step
    along much of a tangent line but its crest leaves the line; a film's straight edge does not.
    ``lit`` (the lit-panel mask) is sampled ``depth`` pixels inside each line.
    """
    h, w = ridges.shape
    angle = np.array([a for a, _ in lines])
    rho = np.array([r for _, r in lines])
    normal = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    origin = normal * rho[:, None]
    direction = np.stack([-normal[:, 1], normal[:, 0]], axis=1)
    # The film contains the frame centre, so the side of each line holding the centre is inside.
    sign = np.sign(((centre - origin) * normal).sum(1))
    sign[sign == 0] = 1
    inward = normal * sign[:, None]
    reach = math.hypot(h, w)
    dt = 2.0
    t = np.arange(-reach, reach + dt, dt)
    pts = origin[:, None, :] + t[None, :, None] * direction[:, None, :]
    xs, ys = np.rint(pts[..., 0]).astype(np.intp), np.rint(pts[..., 1]).astype(np.intp)
    ok = (xs >= slack) & (xs < w - slack) & (ys >= slack) & (ys < h - slack)
    xs, ys = np.clip(xs, slack, w - 1 - slack), np.clip(ys, slack, h - 1 - slack)
    # Slack across the line absorbs the Hough transform's 1° quantisation.
    nx, ny = np.rint(inward[:, 0]).astype(np.intp)[:, None], np.rint(inward[:, 1]).astype(np.intp)[:, None]
    good = ok & (ridges[ys, xs] > 0)
    for k in range(1, slack + 1):
        good |= ok & ((ridges[ys + k * ny, xs + k * nx] > 0) | (ridges[ys - k * ny, xs - k * nx] > 0))
    band = pts + depth * inward[:, None, :]
    bx = np.clip(np.rint(band[..., 0]).astype(np.intp), 0, w - 1)
    by = np.clip(np.rint(band[..., 1]).astype(np.intp), 0, h - 1)
    zero = np.zeros((len(lines), 1))
    return _Lines(
        origin,
        direction,
        inward,
        np.concatenate([zero, np.cumsum(good, axis=1)], axis=1),
        np.concatenate([zero, np.cumsum(ok, axis=1)], axis=1),
        np.concatenate([zero, np.cumsum(ok & (lit[by, bx] > 0), axis=1)], axis=1),
        float(t[0]),
        dt,
    )


def _intersect(a: _Lines, b: _Lines) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersections of every line of ``a`` with every line of ``b``: points (Ka, Kb, 2), params on a and b."""
    pa, da = a.origin[:, None, :], a.direction[:, None, :]
    pb, db = b.origin[None, :, :], b.direction[None, :, :]
    cross = da[..., 0] * db[..., 1] - da[..., 1] * db[..., 0]
    cross = np.where(np.abs(cross) < 1e-9, 1e-9, cross)
    diff = pb - pa
    ta = (diff[..., 0] * db[..., 1] - diff[..., 1] * db[..., 0]) / cross
    tb = (diff[..., 0] * da[..., 1] - diff[..., 1] * da[..., 0]) / cross
    return pa + ta[..., None] * da, ta, tb


def _segment_counts(lines: _Lines, index: np.ndarray, t_from: np.ndarray, t_to: np.ndarray) -> tuple[np.ndarray, ...]:
    """Positions on a crest, inside the frame, and with a lit inner band, between two line parameters."""
    lo, hi = np.minimum(t_from, t_to), np.maximum(t_from, t_to)
    n = lines.good.shape[1] - 1
    i0 = np.clip(np.ceil((lo - lines.t0) / lines.dt).astype(np.intp), 0, n)
    i1 = np.clip(np.floor((hi - lines.t0) / lines.dt).astype(np.intp) + 1, 0, n)
    return tuple(counts[index, i1] - counts[index, i0] for counts in (lines.good, lines.seen, lines.lit))


def _clear_of_centre(corners: np.ndarray, h: int, w: int) -> np.ndarray:
    """Whether every side passes at least ``_CENTRE_GAP`` of the frame away from its centre.

    Straight anatomy (the spine's edges) runs near the middle of a centred film; a film's own
    edges do not.
    """
    cx, cy = (w - 1) / 2, (h - 1) / 2
    x, y = corners[..., 0], corners[..., 1]
    gap_x, gap_y = _CENTRE_GAP * w, _CENTRE_GAP * h
    return (
        (np.maximum(x[..., 0], x[..., 3]) <= cx - gap_x)
        & (np.minimum(x[..., 1], x[..., 2]) >= cx + gap_x)
        & (np.maximum(y[..., 0], y[..., 1]) <= cy - gap_y)
        & (np.minimum(y[..., 2], y[..., 3]) >= cy + gap_y)
    )


def _plausible_perspective(corners: np.ndarray) -> np.ndarray:
    """Whether opposite sides lean alike, as a rectangle's do when photographed from a sensible angle.

    A film's side that was missed is often replaced by the body's slanting outline.
    """
    edge = np.roll(corners, -1, axis=-2) - corners  # top, right, bottom, left as vectors
    angle = np.degrees(np.arctan2(edge[..., 1], edge[..., 0]))
    diff_tb = np.abs((angle[..., 0] - angle[..., 2] + 180) % 360 - 180)
    diff_lr = np.abs((angle[..., 1] - angle[..., 3] + 180) % 360 - 180)
    return (np.abs(diff_tb - 180) <= _MAX_CONVERGENCE) & (np.abs(diff_lr - 180) <= _MAX_CONVERGENCE)


def _best_quad(sides: dict[str, _Lines], h: int, w: int, min_support: float) -> tuple[np.ndarray, float] | None:
    top, right, bottom, left = (sides[name] for name in _SIDES)
    tl, t_tl_top, t_tl_left = _intersect(top, left)  # (Kt, Kl)
    tr, t_tr_top, t_tr_right = _intersect(top, right)  # (Kt, Kr)
    br, t_br_bottom, t_br_right = _intersect(bottom, right)  # (Kb, Kr)
    bl, t_bl_bottom, t_bl_left = _intersect(bottom, left)  # (Kb, Kl)
    kt, kr, kb, kl = (len(s.origin) for s in (top, right, bottom, left))
    it, ir, ib, il = np.meshgrid(np.arange(kt), np.arange(kr), np.arange(kb), np.arange(kl), indexing="ij")
    corners = np.stack([tl[it, il], tr[it, ir], br[ib, ir], bl[ib, il]], axis=-2)  # (..., 4, 2)
    counts = [
        _segment_counts(top, it, t_tl_top[it, il], t_tr_top[it, ir]),
        _segment_counts(right, ir, t_tr_right[it, ir], t_br_right[ib, ir]),
        _segment_counts(bottom, ib, t_br_bottom[ib, ir], t_bl_bottom[ib, il]),
        _segment_counts(left, il, t_bl_left[ib, il], t_tl_left[it, il]),
    ]
    good = np.stack([g for g, _, _ in counts], axis=-1)
    seen = np.stack([s for _, s, _ in counts], axis=-1)
    lit = np.stack([n for _, _, n in counts], axis=-1)
    side_support = good / np.maximum(seen, 1)
    support = good.sum(-1) / np.maximum(seen.sum(-1), 1)
    sides_supported = (side_support >= _MIN_SIDE_SUPPORT).all(-1) & (seen >= 8).all(-1)
    # Most images have no outline supported well enough: stop before the geometry.
    if not (sides_supported & (support >= min_support)).any():
        return None
    x, y = corners[..., 0], corners[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, -1) - np.roll(x, -1, -1) * y).sum(-1))
    share = area / (h * w)
    angles = interior_angles(corners)
    # Corners stay off the frame's rim: lines there are scan borders or the edge of an image
    # pasted into a bigger canvas, and a film photographed with a margin keeps clear of it.
    mx, my = _RIM * w, _RIM * h
    valid = (
        (x >= mx).all(-1)
        & (x <= w - 1 - mx).all(-1)
        & (y >= my).all(-1)
        & (y <= h - 1 - my).all(-1)
        & (share >= MIN_SHARE)
        & (share <= MAX_SHARE)
        & (angles >= _ANGLE_RANGE[0]).all(-1)
        & (angles <= _ANGLE_RANGE[1]).all(-1)
        & (np.abs(angles.sum(-1) - 360) < 1)  # convex and not self-crossing
        & sides_supported
        & _clear_of_centre(corners, h, w)
        & _plausible_perspective(corners)
    )
    if not valid.any():
        return None
    top_support = float(support[valid].max())
    if top_support < min_support:
        return None
    # Straight steps inside the film (the body's outline, a label) can be as well supported as
    # its edges; of the near-best candidates the film is the outermost one, unless a side runs
    # along a light box's edge: then the outermost of those with no such side.
    contenders = valid & (support >= top_support - _SUPPORT_SLACK)
    off_panel = contenders & ~(lit / np.maximum(seen, 1) >= _LIT_SIDE).any(-1)
    if off_panel.any():
        contenders = off_panel
    best = np.unravel_index(int(np.argmax(np.where(contenders, area, -1.0))), area.shape)
    return corners[best].astype(np.float32), float(support[best])


def _refit(corners: np.ndarray, edge_sets: dict[str, np.ndarray]) -> np.ndarray:
    """Least-squares lines through each side's edge pixels near it, intersected: sub-degree corners."""
    lines = []
    for i, name in enumerate(_SIDES):
        a, b = corners[i].astype(np.float64), corners[(i + 1) % 4].astype(np.float64)
        length = float(np.linalg.norm(b - a))
        unit = (b - a) / max(length, 1e-9)
        pts = edge_sets[name]
        rel = pts - a
        along = rel @ unit
        across = np.abs(rel[:, 0] * unit[1] - rel[:, 1] * unit[0])
        near = (across <= 2.5) & (along > 0.05 * length) & (along < 0.95 * length)
        if near.sum() < 10:
            return corners
        vx, vy, x0, y0 = cv2.fitLine(pts[near].astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0]), np.array([vx, vy])))
    refined = []
    for i in range(4):
        (p, r), (q, s) = lines[i - 1], lines[i]
        cross = r[0] * s[1] - r[1] * s[0]
        if abs(cross) < 1e-6:
            return corners
        t = ((q[0] - p[0]) * s[1] - (q[1] - p[1]) * s[0]) / cross
        refined.append(p + t * r)
    out = np.array(refined, dtype=np.float32)
    return out if np.abs(out - corners).max() <= 4.0 else corners


def _step_maps(gray: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Brightness steps across vertical and across horizontal edges (absolute, uint8 gray levels).

    Smoothing runs mostly along the edge direction: a straight film edge survives, while
    texture and noise, which do not line up over tens of pixels, average out. The sign is
    dropped because the densest (black) parts of a film can be darker than the room behind.
    """
    along, across = 2 * round(_ALONG_HALF * scale) + 1, 2 * round(scale) + 1
    d = max(1, round(2 * scale))
    # Box filters: a third of the cost of Gaussians this long, and the step measure does not
    # need their smoother response.
    vertical_edges = cv2.blur(gray, (across, along))
    horizontal_edges = cv2.blur(gray, (along, across))
    dx = np.zeros_like(gray)
    dy = np.zeros_like(gray)
    dx[:, d:-d] = cv2.absdiff(vertical_edges[:, 2 * d :], vertical_edges[:, : -2 * d])
    dy[d:-d, :] = cv2.absdiff(horizontal_edges[2 * d :, :], horizontal_edges[: -2 * d, :])
    return dx, dy


def _ridges(step: np.ndarray, axis: int) -> np.ndarray:
    """Pixels where ``step`` peaks across the edge (along ``axis``) and is large enough: thin edge lines."""
    s = step if axis == 0 else step.T
    out = np.zeros(s.shape, np.uint8)
    mid = s[1:-1]
    peak = (mid >= _RIDGE_STEP) & (mid >= s[:-2]) & (mid > s[2:])
    out[1:-1][peak] = 255
    return out if axis == 0 else out.T


def find_film(gray: np.ndarray, min_support: float = MIN_SUPPORT,
              slacks: tuple[int, ...] = (_SLACK,)) -> FilmQuad | None:
    """The film in a small ``(h, w)`` uint8 image (longest side a few hundred pixels), or None if there is none.

    ``min_support`` is the share of the film's outline that must run along straight edges.
    ``slacks``: how many pixels across a line a crest may lie and still count as on it, tried in
    turn until one finds a film; the edges and candidate lines are detected once for all of them.
    """
    if not slacks or min(slacks) < 1:
        raise ValueError(f"every slack must be at least 1 pixel, got {slacks}")
    h, w = gray.shape
    if min(h, w) < 48:
        return None
    scale = max(h, w) / _REFERENCE_SIDE
    dx, dy = _step_maps(gray, scale)
    min_votes = max(20, int(0.2 * min(h, w)))
    centre = np.array([(w - 1) / 2, (h - 1) / 2])
    ridge_x, ridge_y = _ridges(dx, axis=1), _ridges(dy, axis=0)
    lit = (gray >= LIT_LEVEL * float(np.percentile(gray[::2, ::2], 99))).astype(np.uint8)
    depth = max(2, round(_LIT_DEPTH * scale))
    candidates = _split_sides(_axis_lines(ridge_y, False, min_votes), centre, "top", "bottom")
    candidates |= _split_sides(_axis_lines(np.ascontiguousarray(ridge_x.T), True, min_votes), centre, "left", "right")
    if not all(candidates[name] for name in _SIDES):
        return None  # a side without a single candidate line: no outline to score
    for slack in slacks:
        sides = {name: _profile(ridge_y if name in ("top", "bottom") else ridge_x, candidates[name], centre, lit,
                                depth, slack) for name in _SIDES}
        found = _best_quad(sides, h, w, min_support)
        if found is not None:
            break
    else:
        return None
    corners, support = found
    points_x = np.argwhere(ridge_x)[:, ::-1].astype(np.float64)
    points_y = np.argwhere(ridge_y)[:, ::-1].astype(np.float64)
    corners = _refit(corners, {"top": points_y, "bottom": points_y, "left": points_x, "right": points_x})
    area = float(cv2.contourArea(corners))
    return FilmQuad(corners, area / (h * w), support)


def shrink_by(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``×``factor`` pixel blocks (a trailing partial block is dropped).

    OpenCV's area resize is fast only for an exact integer ratio, hence the trim.
    """
    h, w = image.shape[:2]
    out_w, out_h = max(1, w // factor), max(1, h // factor)
    trimmed = np.ascontiguousarray(image[: out_h * factor, : out_w * factor])
    return cv2.resize(trimmed, (out_w, out_h), interpolation=cv2.INTER_AREA)


def extract_film(image: np.ndarray, quad: FilmQuad) -> np.ndarray:
    """The film from ``image`` (2-D or RGB, same pixel frame as ``quad``): cropped, or rectified when skewed.

    Output sides follow the quadrilateral's side lengths, capped at ``MAX_OUTPUT_SIDE``.
    """
    c = quad.corners.astype(np.float64)
    h, w = image.shape[:2]
    if quad.skew_degrees <= SKEW_MIN_DEGREES:
        # Nearly axis-aligned: the inscribed rectangle keeps the original pixels (no resampling).
        x0 = max(0, math.ceil(max(c[0, 0], c[3, 0])))
        x1 = min(w, math.floor(min(c[1, 0], c[2, 0])) + 1)
        y0 = max(0, math.ceil(max(c[0, 1], c[1, 1])))
        y1 = min(h, math.floor(min(c[2, 1], c[3, 1])) + 1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            return image[y0:y1, x0:x1].copy()  # a copy: the caller's array must not alias the result
    out_w = max(np.linalg.norm(c[1] - c[0]), np.linalg.norm(c[2] - c[3]))
    out_h = max(np.linalg.norm(c[3] - c[0]), np.linalg.norm(c[2] - c[1]))
    fit = min(1.0, MAX_OUTPUT_SIDE / max(out_w, out_h, 1.0))
    out_w, out_h = max(2, round(out_w * fit)), max(2, round(out_h * fit))
    src = image
    # warpPerspective only interpolates: shrinking a large photo by more than 2x would alias,
    # so first average whole pixel blocks (cheap integer-factor area resize).
    factor = int(1.0 / fit)
    if factor >= 2:
        src = shrink_by(image, factor)
        c = FilmQuad(c.astype(np.float32), quad.share).scaled(1.0 / factor, 1.0 / factor).corners
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(np.asarray(c, dtype=np.float32), dst)
    return cv2.warpPerspective(
        np.ascontiguousarray(src), matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
