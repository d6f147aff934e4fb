"""``sem3r app``: the upload / run / ask handlers, and the whole app end to end in headless Chromium."""

import os
import shutil
import socket
import zipfile
from pathlib import Path

import pytest

from sem3r.app import answer_question, prepare_input, run_session
from sem3r.errors import MissingDependencyError, Sem3RError


@pytest.fixture(scope="module")
def scene_folder(tmp_path_factory):
    """A small synthetic Scene folder (depth and poses: the pipeline picks the rgbd backend)."""
    from sem3r.data.synthetic import SynthConfig, generate_scene

    folder = tmp_path_factory.mktemp("input") / "room"
    generate_scene(SynthConfig(seed=3, num_views=3, height=96, width=128)).scene.save(folder)
    return folder


@pytest.fixture(scope="module")
def scene_zip(scene_folder, tmp_path_factory):
    """The Scene folder zipped as a user would (the folder itself inside the archive)."""
    path = tmp_path_factory.mktemp("upload") / "room.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(scene_folder.rglob("*")):
            zf.write(f, Path("room") / f.relative_to(scene_folder))
    return path


def test_prepare_input_folder_and_uploads(tmp_path, scene_folder, scene_zip):
    assert prepare_input(tmp_path / "a", folder=f"  {scene_folder}  ") == scene_folder
    unzipped = prepare_input(tmp_path / "b", files=[scene_zip])
    assert unzipped == tmp_path / "b" / "input" / "room" and (unzipped / "scene.json").is_file()
    frames = [tmp_path / f"frame{i}.png" for i in range(2)]
    for f in frames:
        f.write_bytes(b"png")
    copied = prepare_input(tmp_path / "c", files=frames)
    assert sorted(p.name for p in copied.iterdir()) == ["frame0.png", "frame1.png"]
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert prepare_input(tmp_path / "d", files=[video]) == video


def test_prepare_input_errors(tmp_path):
    with pytest.raises(Sem3RError, match="no input"):
        prepare_input(tmp_path, files=[], folder="  ")
    with pytest.raises(Sem3RError, match="does not exist"):
        prepare_input(tmp_path, folder=str(tmp_path / "missing"))
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(Sem3RError, match="outside the archive"):
        prepare_input(tmp_path / "run", files=[evil])
    assert not (tmp_path / "outside.txt").exists()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(Sem3RError, match="cannot read the zip"):
        prepare_input(tmp_path / "run2", files=[bad])
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for d in ("x", "y"):
        (tmp_path / d / "f.png").write_bytes(b"")
    with pytest.raises(Sem3RError, match="named 'f.png'"):
        prepare_input(tmp_path / "run3", files=[tmp_path / "x" / "f.png", tmp_path / "y" / "f.png"])


def test_run_session_error_is_one_line(tmp_path):
    session = run_session(tmp_path, folder=str(tmp_path / "nowhere"))
    assert session.status.startswith("Error: ") and "\n" not in session.status
    assert session.scene_dir is None and session.rows == []
    with pytest.raises(Sem3RError, match="run the pipeline first"):
        answer_question(None, "how big is the room?")


def test_build_app_without_gradio(monkeypatch):
    import sys

    from sem3r.app import build_app

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(MissingDependencyError, match=r"sem3r\[app\]"):
        build_app()


def test_cli_registers_app():
    from sem3r.cli import COMMANDS

    assert "app" in COMMANDS


def _chromium() -> str:
    """The system Chromium, or skip when it or playwright is missing."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium executable on PATH")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STATUS = "document.querySelector('#sem3r-status textarea')"


def _wait_status(page, previous: str) -> str:
    """Wait until the status box shows something other than ``previous``; return it."""
    page.wait_for_function(f"{STATUS} && {STATUS}.value && {STATUS}.value !== {previous!r}", timeout=240_000)
    return page.locator("#sem3r-status textarea").input_value()


def test_app_in_browser(tmp_path, scene_folder, scene_zip):
    """Folder path -> Run -> viewer, instance table, downloads; a question; a zip upload; an error line."""
    executable = _chromium()
    pytest.importorskip("gradio")
    from playwright.sync_api import sync_playwright

    from sem3r.app import launch

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    port = _free_port()
    demo = launch(port=port, workdir=tmp_path / "work", block=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"http://127.0.0.1:{port}/")

            page.locator("#sem3r-folder textarea").fill(str(scene_folder))
            page.locator("#sem3r-run").click()
            status = _wait_status(page, "")
            assert status.startswith("Done"), status
            page.wait_for_selector("iframe.sem3r-viewer")
            viewer = page.frame_locator("iframe.sem3r-viewer")
            viewer.locator("canvas#view").wait_for()
            page.wait_for_function(  # the header row and at least one instance
                "Number(document.querySelector('#sem3r-instances-table [role=grid]')?.getAttribute('aria-rowcount')) > 1")
            page.locator('#sem3r-downloads a[download="scene.glb"]').wait_for()

            page.locator("#sem3r-question textarea").fill("how big is the room?")
            page.locator("#sem3r-ask").click()
            page.wait_for_function("document.querySelector('#sem3r-answer').innerText.includes('m2')", timeout=60_000)

            # upload path: the same Scene zipped, through the file input
            page.locator("#sem3r-folder textarea").fill("")
            page.locator("#sem3r-files input[type=file]").set_input_files(str(scene_zip))
            page.locator('#sem3r-files [aria-label="room.zip"]').wait_for()
            page.locator("#sem3r-run").click()
            second = _wait_status(page, status)
            assert second.startswith("Done") and "/input/" not in second, second
            assert len(list((tmp_path / "work").glob("run-*/input/room/scene.json"))) == 1

            # bad input: one line in the status box, no traceback anywhere on the page
            page.locator("#sem3r-folder textarea").fill(str(tmp_path / "missing"))
            page.locator("#sem3r-run").click()
            error = _wait_status(page, second)
            assert error.startswith("Error: ") and "does not exist" in error and "\n" not in error
            assert "Traceback" not in page.content()
            browser.close()
    finally:
        demo.close()
