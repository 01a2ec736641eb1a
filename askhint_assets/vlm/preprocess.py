"""Qwen2.5-VL video preprocessing without torchvision, equal to ``Qwen2VLVideoProcessor``.

Steps (as transformers does them): ``smart_resize`` each frame to multiples of ``patch*merge`` within
``[min_pixels, max_pixels]``, bicubic resize with antialias on the uint8 frames (like torchvision), scale
by 1/255 and normalise with the CLIP mean/std, pad the frame count to a multiple of ``temporal_patch``
by repeating the last frame, then patchify to ``pixel_values_videos`` of shape
``(gt*gh*gw, 3*temporal_patch*patch*patch)``. The prompt needs ``gt*gh*gw/merge**2`` video pad tokens.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from askhint_assets.errors import InputError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Official video pixel bounds per frame (transformers' Qwen2VLVideoProcessor and qwen-vl-utils).
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = VIDEO_MIN_PIXELS,
                 max_pixels: int = VIDEO_MAX_PIXELS) -> tuple[int, int]:
    """Height and width divisible by ``factor``, pixel count within bounds, aspect kept (as Qwen)."""
    if max(height, width) / min(height, width) > 200:
        raise InputError(f"aspect ratio of {height}x{width} exceeds 200", field="frames")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


IMAGE_MIN_PIXELS = 56 * 56  # Qwen2VLImageProcessor's defaults (an image sent as an image_url part)
IMAGE_MAX_PIXELS = 28 * 28 * 1280


def video_tokens(num_frames: int, height: int, width: int, min_pixels: int = VIDEO_MIN_PIXELS,
                 max_pixels: int = VIDEO_MAX_PIXELS, patch: int = 14, merge: int = 2,
                 temporal_patch: int = 2) -> dict:
    """Grid and token count of ``num_frames`` frames of ``height x width`` sent as one video (no pixels).

    The same arithmetic as :func:`preprocess_video`: ``gt = ceil(T/temporal_patch)``, ``(gh, gw)`` from
    :func:`smart_resize`, ``gt*gh*gw/merge**2`` video pad tokens.
    """
    if num_frames < 1:
        raise InputError(f"num_frames must be >= 1, got {num_frames}", field="num_frames")
    h, w = smart_resize(height, width, patch * merge, min_pixels, max_pixels)
    grid = (-(-num_frames // temporal_patch), h // patch, w // patch)
    return {"grid": grid, "tokens": grid[0] * grid[1] * grid[2] // merge**2, "resized_hw": (h, w)}


def image_tokens(num_frames: int, height: int, width: int, min_pixels: int = IMAGE_MIN_PIXELS,
                 max_pixels: int = IMAGE_MAX_PIXELS, patch: int = 14, merge: int = 2) -> dict:
    """Token count of the same frames sent as ``num_frames`` separate images (each one temporal patch)."""
    h, w = smart_resize(height, width, patch * merge, min_pixels, max_pixels)
    per = (h // patch) * (w // patch) // merge**2
    return {"grid": (1, h // patch, w // patch), "tokens": per * num_frames, "per_image": per, "resized_hw": (h, w)}


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(T,H,W,3)`` uint8 → ``(T,3,height,width)`` float32 of whole values in [0, 255].

    Resized on the uint8 tensor, as torchvision's ``resize`` does for the official processor: torch's uint8
    bicubic antialias kernel rounds differently from resizing floats and rounding (up to 6 levels apart),
    and only this path equals the official pixels (``tests/unit/test_processor_fixtures.py``).
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return x.to(torch.float32).numpy()


def preprocess_video(
    frames: np.ndarray,
    fps: float,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int = VIDEO_MAX_PIXELS,
    patch: int = 14,
    merge: int = 2,
    temporal_patch: int = 2,
) -> dict:
    """Model inputs for one video of ``(T,H,W,3)`` uint8 RGB frames sampled at ``fps``.

    Returns ``pixel_values_videos`` (float32), ``video_grid_thw`` (``(1,3)`` int64),
    ``second_per_grid_ts`` (``[temporal_patch/fps]``), ``num_video_tokens`` and ``resized_hw``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise InputError(f"frames must be (T,H,W,3) with T>=1, got {frames.shape}", field="frames")
    if frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8, got {frames.dtype}", field="frames")
    if not fps > 0:
        raise InputError(f"fps must be positive, got {fps}", field="fps")
    factor = patch * merge
    height, width = smart_resize(frames.shape[1], frames.shape[2], factor, min_pixels, max_pixels)
    x = resize_frames(frames, height, width)
    mean = np.asarray(CLIP_MEAN, dtype=np.float32) * np.float32(255.0)
    std = np.asarray(CLIP_STD, dtype=np.float32) * np.float32(255.0)
    x = (x - mean[None, :, None, None]) / std[None, :, None, None]
    if pad := -x.shape[0] % temporal_patch:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)], axis=0)
    gt, gh, gw = x.shape[0] // temporal_patch, height // patch, width // patch
    x = x.reshape(gt, temporal_patch, 3, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    pixel_values = np.ascontiguousarray(x.reshape(gt * gh * gw, 3 * temporal_patch * patch * patch))
    return {
        "pixel_values_videos": pixel_values.astype(np.float32, copy=False),
        "video_grid_thw": np.array([[gt, gh, gw]], dtype=np.int64),
        "second_per_grid_ts": [temporal_patch / float(fps)],
        "num_video_tokens": gt * gh * gw // (merge * merge),
        "resized_hw": (height, width),
    }
