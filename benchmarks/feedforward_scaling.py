"""Time and peak memory of the feed-forward geometry model versus the number of frames.

Each measurement runs in a fresh subprocess so its peak resident memory (``ru_maxrss``) belongs to
that run alone; the table reports the peak above the memory held after building the model, i.e.
activations of the aggregator and the (chunked) heads. Weights are random: speed and memory do not
depend on their values. The default (official-size) model is built on the meta device and
materialised without initialisation, so no 5 GB initialisation is timed.

Example:
    python benchmarks/feedforward_scaling.py                      # small config, 1..16 frames, + default 1, 2
    python benchmarks/feedforward_scaling.py --default-frames     # skip the official-size model
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def worker(config: str, frames: int, height: int, width: int, chunk: int, threads: int) -> dict:
    import torch

    from sem3r.models.vggt import VGGT, VGGTConfig

    torch.set_num_threads(threads)
    cfg = VGGTConfig(enable_track=False) if config == "default" else VGGTConfig.small(enable_track=False)
    with torch.device("meta"):
        model = VGGT(cfg)
    model = model.to_empty(device="cpu").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    images = torch.rand(1, frames, 3, height, width)
    with torch.inference_mode():
        start = time.perf_counter()
        model(images, frames_chunk_size=chunk)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "model_mb": base, "peak_mb": peak}


def measure(config: str, frames: int, height: int, width: int, chunk: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", config, str(frames), str(height), str(width), str(chunk), str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="frame counts (small config)")
    parser.add_argument("--default-frames", type=int, nargs="*", default=[1, 2], help="frame counts of the official-size model")
    parser.add_argument("--height", type=int, default=392, help="image height (multiple of 14)")
    parser.add_argument("--width", type=int, default=518, help="image width (multiple of 14)")
    parser.add_argument("--chunk", type=int, default=8, help="frames per DPT-head chunk")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        config, frames, height, width, chunk, threads = args.worker
        print(json.dumps(worker(config, int(frames), int(height), int(width), int(chunk), int(threads))))
        return
    runs = [("small", f) for f in args.frames] + [("default", f) for f in args.default_frames]
    header = f"{'config':>8} {'frames':>6} {'H x W':>10} {'time s':>8} {'s/frame':>8} {'model MB':>9} {'act. MB':>8} {'act. MB/frame':>13}"
    print(f"CPU, {args.threads} threads, fp32, heads in chunks of {args.chunk} frames, random weights")
    print(header)
    print("-" * len(header))
    for config, frames in runs:
        r = measure(config, frames, args.height, args.width, args.chunk, args.threads)
        act = r["peak_mb"] - r["model_mb"]
        print(
            f"{config:>8} {frames:>6} {args.height:>4} x {args.width:<4}{r['seconds']:>8.2f} {r['seconds'] / frames:>8.2f} "
            f"{r['model_mb']:>9.0f} {act:>8.0f} {act / frames:>13.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
