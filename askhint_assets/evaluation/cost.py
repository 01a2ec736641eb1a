"""What a prediction set cost: requests and frames sent per video, from the units it scored (cache hits
counted, so the figures are those of a cold cache and do not depend on what an earlier run left)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from askhint_assets.datasets.base import VideoRecord
from askhint_assets.video.sampling import SamplingConfig, sample_indices


@dataclass(frozen=True)
class Cost:
    videos: int
    units: int
    requests: int
    frames: int  # frames in all requests (each request carries its unit's frames)

    @property
    def requests_per_video(self) -> float:
        return self.requests / self.videos if self.videos else float("nan")

    @property
    def frames_per_video(self) -> float:
        return self.frames / self.videos if self.videos else float("nan")


def cost_of(spans: Iterable[tuple[str, int, int, int]], videos: Mapping[str, VideoRecord],
            sampling: SamplingConfig) -> Cost:
    """The cost of units ``(video_id, start, end, requests)`` of ``videos`` sampled by ``sampling``."""
    seen, units, requests, frames = set(), 0, 0, 0
    for vid, start, end, n in spans:
        v = videos.get(vid)
        if v is None:
            continue
        seen.add(vid)
        units += 1
        requests += n
        frames += n * len(sample_indices(int(v.num_frames), float(v.fps), sampling, start=start, end=end))
    return Cost(len(seen), units, requests, frames)
