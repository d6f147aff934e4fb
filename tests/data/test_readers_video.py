"""Video reader: frames sampled evenly with PyAV from videos written in the test."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sem3r.data.readers import read_scene, read_video
from sem3r.errors import MissingDependencyError, Sem3RError

av = pytest.importorskip("av")

NUM, H, W, STEP = 30, 48, 64, 8


def write_video(path: Path, rotation: int | None = None) -> Path:
    """``NUM`` frames of ``H x W``; frame ``i`` is grey level ``STEP * i`` with a white top-left block."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = W, H, "yuv420p", 20_000_000
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(NUM):
            frame = np.full((H, W, 3), STEP * i, np.uint8)
            frame[:16, :16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("ext", ["mp4", "mkv"])  # mkv stores no frame count: packets are counted
def test_frames_sampled_evenly(tmp_path, ext):
    path = write_video(tmp_path / f"clip.{ext}")
    scene = read_video(path, num_frames=5)
    expected = [0, 7, 14, 22, 29]
    assert scene.image_names == [f"frame_{i:06d}" for i in expected]
    assert scene.metadata["frame_indices"] == expected
    assert scene.images.shape == (5, H, W, 3) and scene.images.dtype == np.uint8
    grey = scene.images[:, 24:, 24:].reshape(5, -1).mean(axis=1)
    np.testing.assert_allclose(grey, STEP * np.array(expected), atol=4)
    f = 1.2 * W
    np.testing.assert_allclose(scene.intrinsics[0], [[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1]])
    assert scene.metadata["source"] == "video" and scene.metadata["poses_known"] is False
    assert scene.metadata["fps"] == pytest.approx(10.0)


def test_more_frames_requested_than_available(tmp_path):
    scene = read_video(write_video(tmp_path / "clip.mp4"), num_frames=100)
    assert scene.num_views == NUM and scene.image_names[-1] == "frame_000029"


def test_display_rotation_applied(tmp_path):
    scene = read_video(write_video(tmp_path / "portrait.mp4", rotation=90), num_frames=2)
    assert scene.images.shape == (2, W, H, 3)
    img = scene.images[0, ..., 0].astype(int)
    # 90 degrees counter-clockwise moves the stored top-left block to the bottom-left.
    assert img[-16:, :16].mean() > 200 and img[:16, :16].mean() < 60


def test_read_scene_detects_video(tmp_path):
    scene = read_scene(write_video(tmp_path / "clip.MP4"), num_frames=3)
    assert scene.metadata["source"] == "video" and scene.num_views == 3


def test_video_bad_input(tmp_path, monkeypatch):
    with pytest.raises(Sem3RError) as info:
        read_video(tmp_path / "missing.mp4")
    assert "missing.mp4" in str(info.value) and "\n" not in str(info.value)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(Sem3RError) as info:
        read_video(junk)
    assert "junk.mp4" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(Sem3RError) as info:
        read_video(write_video(tmp_path / "clip.mp4"), num_frames=0)
    assert "num_frames" in str(info.value)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingDependencyError) as info:
        read_video(tmp_path / "clip.mp4")
    assert "sem3r[video]" in str(info.value)
