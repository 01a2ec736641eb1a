"""Requests per video for the ``video``, ``window`` and ``tree`` granularities on UCF-Crime's 290 test videos at
their real lengths (support/ucf_test_lengths.csv, from LAVAD's test list), under stated assumptions about how
often a span is judged abnormal, beside the server-bound time on one GPU from the prompt tokens.

No model runs: the requests follow from the tree's rule (:func:`askhint_assets.video.tree.nodes_asked`) and an
answer pattern. Assumptions (printed with the table):

* an anomalous video (a name that is not ``Normal_Videos_*``) holds one anomalous interval of ``--fraction`` of
  its length (at least one window), at a seeded random place; a span overlapping it is judged abnormal (a model
  that never misses);
* any other span is judged abnormal with probability ``--false-alarm`` (seeded), normal videos included;
* stage 2 (group and rationale) is asked for abnormal windows (window scan) and abnormal leaves (tree);
* prompt tokens per request: the Qwen2.5-VL video tokens of the span's frames at 320x240 (``max_side`` 448, the
  released pixel bounds) + the text tokens of bench/prompt_tokens.py (stage 1: 155, stage 2: 207, Q* of six);
* server-bound time = prompt tokens / ``--prefill-tokens-per-s``, an ASSUMED prefill rate for one GPU (no GPU
  was available to measure it; bench/gpu_qwen7b.py measures it where one is), decoding the few answer tokens
  ignored. Real AUC needs real weights: nothing here says how well the tree localizes.

    PYTHONPATH=. .venv/bin/python bench/tree_requests.py [--fraction 0.1 0.3] [--false-alarm 0 0.1 0.2]
"""

from __future__ import annotations

import argparse
import random

from askhint_assets.video.decode import target_size
from askhint_assets.video.sampling import SamplingConfig, plan_windows, sample_indices
from askhint_assets.video.tree import TreeNode, nodes_asked, tree_grid
from askhint_assets.vlm.preprocess import video_tokens
from support.ucf_test_lengths import FPS, SOURCE, lengths

STAGE1_TEXT, STAGE2_TEXT = 155, 207  # bench/prompt_tokens.py on Qwen2.5's vocabulary, Q* of six
MIN_PIXELS, MAX_PIXELS = 3136, 12845056  # Qwen2.5-VL-7B-Instruct's published preprocessor_config.json
CFG = SamplingConfig(max_frames=128, fallback_fps=1.0, max_side=448)
WINDOW_S, STRIDE_S = 4.0, 2.0


def tokens(n: int, start: int, end: int) -> int:
    w, h = target_size(320, 240, CFG.max_side)
    k = len(sample_indices(n, FPS, CFG, start=start, end=end))
    return video_tokens(k, h, w, MIN_PIXELS, MAX_PIXELS)["tokens"] + 2


class _Judge:
    """The assumed answers for one video: a span overlapping the interval is abnormal; any other is a false alarm
    with probability ``false_alarm``, drawn once per span (the same span asked twice gets the same answer)."""

    def __init__(self, interval: tuple[int, int] | None, false_alarm: float, rng: random.Random) -> None:
        self.interval, self.false_alarm, self.rng = interval, false_alarm, rng
        self.alarms: dict[tuple[int, int], bool] = {}

    def node(self, n: TreeNode) -> bool:
        return self(n.start, n.end)

    def __call__(self, start: int, end: int) -> bool:
        if self.interval is not None and start < self.interval[1] and self.interval[0] < end:
            return True
        if (start, end) not in self.alarms:
            self.alarms[(start, end)] = self.rng.random() < self.false_alarm
        return self.alarms[(start, end)]


def run(fraction: float, false_alarm: float, seed: int = 0) -> dict[str, tuple[float, float]]:
    """``granularity -> (requests per video, prompt tokens per video)`` under one assumption."""
    rng = random.Random(seed)
    totals = {g: [0, 0] for g in ("video", "window", "tree")}
    vids = lengths()
    for vid, n in vids.items():
        anomalous = not vid.startswith("Normal_Videos")
        length = max(round(fraction * n), round(WINDOW_S * FPS)) if anomalous else 0
        a = rng.randrange(0, max(1, n - length + 1)) if anomalous else -1
        interval = (a, a + length)
        abnormal = _Judge(interval if anomalous else None, false_alarm, rng)

        root_abnormal = abnormal(0, n)
        totals["video"][0] += 1 + root_abnormal
        totals["video"][1] += tokens(n, 0, n) * (1 + root_abnormal) + STAGE1_TEXT + STAGE2_TEXT * root_abnormal
        for w in plan_windows(n, FPS, "window", window_s=WINDOW_S, stride_s=STRIDE_S):
            ab = abnormal(w.start, w.end)
            totals["window"][0] += 1 + ab
            totals["window"][1] += tokens(n, w.start, w.end) * (1 + ab) + STAGE1_TEXT + STAGE2_TEXT * ab
        grid = tree_grid(n, FPS, WINDOW_S, STRIDE_S)

        for node in nodes_asked(grid, abnormal.node):
            s2 = node.is_leaf and abnormal(node.start, node.end)
            totals["tree"][0] += 1 + s2
            totals["tree"][1] += tokens(n, node.start, node.end) * (1 + s2) + STAGE1_TEXT + STAGE2_TEXT * s2
    return {g: (r / len(vids), t / len(vids)) for g, (r, t) in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fraction", type=float, nargs="+", default=[0.1, 0.3],
                    help="anomalous interval as a share of an anomalous video")
    ap.add_argument("--false-alarm", type=float, nargs="+", default=[0.0, 0.1, 0.2],
                    help="probability that a span without the anomaly is judged abnormal")
    ap.add_argument("--prefill-tokens-per-s", type=float, default=20000.0,
                    help="ASSUMED prefill rate of one GPU for the 7B model (not measured here)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    vids = lengths()
    print(f"UCF-Crime test set: {len(vids)} videos, {sum(vids.values()):,} frames at {FPS:.0f} fps "
          f"(lengths from {SOURCE[0]} {SOURCE[1]} @ {SOURCE[2][:8]})")
    print(f"sampling: up to {CFG.max_frames} frames, {CFG.fallback_fps} fps for short spans, 320x240 -> max side "
          f"{CFG.max_side}; windows {WINDOW_S} s every {STRIDE_S} s; server-bound time at an ASSUMED "
          f"{a.prefill_tokens_per_s:,.0f} prompt tokens/s on one GPU\n")
    print("| anomalous share | false alarms | granularity | requests per video | x window scan | "
          "prompt tokens per video | GPU s per video | GPU h, 290 videos |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for f in a.fraction:
        for q in a.false_alarm:
            res = run(f, q, a.seed)
            base = res["window"][0]
            for g, (req, tok) in res.items():
                sec = tok / a.prefill_tokens_per_s
                print(f"| {f:.2f} | {q:.2f} | {g} | {req:.2f} | {req / base:.3f} | {tok:,.0f} | {sec:.2f} | "
                      f"{sec * len(vids) / 3600:.2f} |")
    print("\nRequests count stage 1 and stage 2. Real AUC needs real weights: this counts cost only.")


if __name__ == "__main__":
    main()
