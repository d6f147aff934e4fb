import base64
import io
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from sem3r.errors import Sem3RError
from sem3r.reasoning.grounding import (
    GroundingConfig,
    GroundingResult,
    ground_instances,
    highlight_instance,
)
from sem3r.reasoning.lmm import make_lmm
from sem3r.scene import Scene

H, W = 20, 30
RED = np.array([255, 0, 0], np.uint8)


def _scene() -> Scene:
    """Two views; instance 4 on the left in both, 7 on the right in both, 9 top-centre in view 1 only."""
    rng = np.random.default_rng(1)
    images = rng.integers(20, 200, (2, H, W, 3), dtype=np.uint8)  # never pure red, even dimmed
    masks = np.full((2, H, W), -1, np.int32)
    masks[0, 5:15, 1:9] = 4
    masks[1, 8:12, 2:6] = 4
    masks[0, 4:16, 20:29] = 7
    masks[1, 2:18, 18:28] = 7
    masks[1, 0:4, 12:17] = 9
    return Scene(images=images, intrinsics=np.tile(np.eye(3), (2, 1, 1)),
                 cam_from_world=np.tile(np.eye(3, 4), (2, 1, 1)), instance_masks=masks)


def _reply_for(images):
    """Yes when the red outline lies in the left third of every image, 'unclear' when it touches the top row."""
    reds = [np.argwhere((im == RED).all(axis=-1)) for im in images]
    if any(r[:, 0].min() == 0 for r in reds):
        return "I am not sure."
    return "**Yes**, it is." if all(r[:, 1].max() < W // 3 for r in reds) else "No."


class GroundingServer:
    def __init__(self):
        self.images_per_request = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path == "/v1/chat/completions" and body["model"] == "fake-vl"
                text, *parts = body["messages"][0]["content"]
                assert text["text"] == "Look at the object highlighted in red. Is it a chair? Answer yes or no."
                images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",")[1]))))
                          for p in parts]
                assert all(im.shape == (H, W, 3) for im in images)
                owner.images_per_request.append(images)
                payload = json.dumps({"choices": [{"message": {"content": _reply_for(images)}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def server():
    srv = GroundingServer()
    yield srv
    srv.server.shutdown()
    srv.server.server_close()


def test_ground_instances_keeps_the_yes_instances(server):
    scene = _scene()
    lmm = make_lmm(server.url, model="fake-vl", timeout=5.0)
    result = ground_instances(scene, "Is it a chair?", lmm, GroundingConfig(progress=False))
    assert result.kept == [4]
    assert result.answers == {4: True, 7: False, 9: None}
    assert result.replies[9] == "I am not sure." and result.num_unclear == 1
    assert result.views == {4: [0, 1], 7: [0, 1], 9: [1]}
    assert [len(images) for images in server.images_per_request] == [2, 2, 1]
    # The images sent are exactly the highlights of the instance in those views.
    np.testing.assert_array_equal(server.images_per_request[1][1],
                                  highlight_instance(scene.images[1], scene.instance_masks[1] == 7))
    np.testing.assert_array_equal(result.masks(scene.instance_masks), scene.instance_masks == 4)


def test_max_views_picks_the_views_with_most_pixels(server):
    scene = _scene()
    lmm = make_lmm(server.url, model="fake-vl")
    result = ground_instances(scene, "Is it a chair?", lmm, GroundingConfig(max_views=1, progress=False), ids=[7, 4])
    # Instance 4: 80 px in view 0, 16 in view 1; instance 7: 108 px in view 0, 160 in view 1.
    assert result.views == {4: [0], 7: [1]}
    assert list(result.answers) == [4, 7] and result.kept == [4]


class RecordingLMM:
    def __init__(self, replies):
        self.replies, self.calls = list(replies), []

    def chat(self, prompt, images=()):
        self.calls.append((prompt, len(images)))
        return self.replies.pop(0)


def test_custom_prompt_and_bad_inputs():
    scene = _scene()
    lmm = RecordingLMM(["yes"])
    result = ground_instances(scene, " Red? ", lmm, GroundingConfig(prompt="Q: {question}", progress=False), ids=[9])
    assert lmm.calls == [("Q: Red?", 1)] and result == GroundingResult([9], {9: True}, {9: "yes"}, {9: [1]})
    with pytest.raises(Sem3RError, match="instance 5 appears in no view"):
        ground_instances(scene, "Red?", lmm, ids=[4, 5])
    with pytest.raises(Sem3RError, match="non-empty question"):
        ground_instances(scene, "  ", lmm)
    with pytest.raises(Sem3RError, match="needs scene.instance_masks"):
        ground_instances(Scene(scene.images, scene.intrinsics, scene.cam_from_world), "Red?", lmm)
    with pytest.raises(Sem3RError, match="must contain '{question}'"):
        GroundingConfig(prompt="no placeholder")
    with pytest.raises(Sem3RError, match="dim_others"):
        GroundingConfig(dim_others=1.5)


def test_unreachable_endpoint_fails_on_first_instance():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lmm = make_lmm(f"http://127.0.0.1:{port}", retries=2)
    with pytest.raises(Sem3RError, match=r"^cannot reach the LMM endpoint .*: connection refused$"):
        ground_instances(_scene(), "Is it a chair?", lmm, GroundingConfig(progress=False))


def test_highlight_instance_outline_dim_and_interior():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    mask = np.zeros((12, 14), bool)
    mask[2:9, 3:10] = True
    mask[4:6, 5:7] = False  # a hole: its rim is outline too
    mask[0:3, 12:14] = True  # touches the image border
    out = highlight_instance(image, mask, GroundingConfig(dim_others=0.25))
    # Hand-built boundary: a mask pixel with a 4-neighbour outside the mask or outside the image.
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    boundary = mask & ~inner
    assert boundary[2, 3] and boundary[3, 5] and boundary[0, 13] and not boundary[7, 7]
    is_red = (out == RED).all(axis=-1)
    np.testing.assert_array_equal(is_red & mask, boundary)
    np.testing.assert_array_equal(out[mask & ~boundary], image[mask & ~boundary])
    np.testing.assert_array_equal(out[~mask], np.rint(image[~mask] * 0.75).astype(np.uint8))
    assert out.dtype == np.uint8 and out.shape == image.shape


def test_highlight_options():
    image = np.full((9, 9, 3), 90, np.uint8)
    mask = np.zeros((9, 9), bool)
    mask[1:8, 1:8] = True
    plain = highlight_instance(image, mask, GroundingConfig(outline=False, dim_others=0.0))
    np.testing.assert_array_equal(plain, image)
    thick = highlight_instance(image, mask, GroundingConfig(outline_width=2, dim_others=1.0, color=(0, 0, 255)))
    blue = (thick == [0, 0, 255]).all(axis=-1)
    np.testing.assert_array_equal(blue, mask & ~ndimage.binary_erosion(mask, iterations=2))
    assert (thick[~mask] == 0).all() and (thick[3:6, 3:6] == 90).all()
    with pytest.raises(Sem3RError, match="mask must have shape"):
        highlight_instance(image, mask[:5])
