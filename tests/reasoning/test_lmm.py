import base64
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image

from sem3r.errors import Sem3RError
from sem3r.reasoning.lmm import (
    LMM,
    OpenAIEndpointConfig,
    OpenAIEndpointLMM,
    TransformersLMM,
    TransformersLMMConfig,
    make_lmm,
    parse_yes_no,
    transformers_messages,
)


class FakeServer:
    """An OpenAI-compatible endpoint on loopback; ``behaviour`` decides each answer."""

    def __init__(self):
        self.requests = []
        self.behaviour = "ok"
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append((self.path, dict(self.headers), json.loads(body)))
                status, payload = owner.answer()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self):
        if self.behaviour == "slow":
            self.release.wait(5.0)
        if self.behaviour == "not json":
            return 200, b"<html>oops</html>"
        if self.behaviour == "no choices":
            return 200, json.dumps({"id": "x", "choices": []}).encode()
        if self.behaviour == "error 500":
            return 500, json.dumps({"error": {"message": "model overloaded\nplease retry"}}).encode()
        if self.behaviour == "error 400":
            return 400, b"bad request: too many images"
        if self.behaviour == "parts":
            return 200, json.dumps({"choices": [{"message": {"content": [{"type": "text", "text": " Yes"}]}}]}).encode()
        return 200, json.dumps({"choices": [{"message": {"role": "assistant", "content": " No. \n"}}]}).encode()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    srv = FakeServer()
    yield srv
    srv.close()


def _decode_png(url):
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


@pytest.mark.parametrize("suffix, path", [("/v1", "/v1/chat/completions"), ("/", "/chat/completions")])
def test_request_format_and_reply(server, suffix, path, monkeypatch):
    monkeypatch.setenv("SEM3R_LMM_API_KEY", "secret")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), rng.integers(0, 256, (4, 3, 3), dtype=np.uint8)]
    lmm = make_lmm(f"http://127.0.0.1:{server.port}{suffix}", model="qwen-test", max_tokens=7)
    assert isinstance(lmm, LMM)
    assert lmm.chat("Is it red?", images) == "No."
    (got_path, headers, body), = server.requests
    assert got_path == path
    assert headers["Authorization"] == "Bearer secret"
    assert body["model"] == "qwen-test" and body["max_tokens"] == 7 and body["temperature"] == 0.0
    (message,) = body["messages"]
    assert message["role"] == "user"
    text, *parts = message["content"]
    assert text == {"type": "text", "text": "Is it red?"}
    assert len(parts) == 2
    for part, image in zip(parts, images):
        assert part["type"] == "image_url"
        np.testing.assert_array_equal(_decode_png(part["image_url"]["url"]), image)


def test_content_given_as_parts_and_no_key_header(server, monkeypatch):
    monkeypatch.delenv("SEM3R_LMM_API_KEY", raising=False)
    server.behaviour = "parts"
    lmm = OpenAIEndpointLMM(OpenAIEndpointConfig(f"http://127.0.0.1:{server.port}"))
    assert lmm.chat("hi") == "Yes"
    _, headers, body = server.requests[0]
    assert "Authorization" not in headers and body["model"] == "default"
    assert body["messages"][0]["content"] == [{"type": "text", "text": "hi"}]


def test_timeout_is_one_line_error_and_retried(server):
    server.behaviour = "slow"
    lmm = OpenAIEndpointLMM(OpenAIEndpointConfig(f"http://127.0.0.1:{server.port}/v1", timeout=0.5, retries=1,
                                                 retry_wait=0.0))
    start = time.monotonic()
    with pytest.raises(Sem3RError, match=r"did not answer within 0\.5 s$") as info:
        lmm.chat("hello")
    assert time.monotonic() - start < 4.0  # two 0.5 s attempts, not the server's 5 s sleep
    assert "\n" not in str(info.value) and str(info.value).startswith(f"the LMM endpoint http://127.0.0.1:{server.port}")
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "behaviour, pattern, attempts",
    [
        ("not json", r"returned a malformed reply: not JSON \(<html>oops</html>\)", 1),
        ("no choices", r"returned a malformed reply: no choices\[0\]\.message\.content", 1),
        ("error 500", r"answered HTTP 500: model overloaded please retry$", 2),
        ("error 400", r"answered HTTP 400: bad request: too many images$", 1),
    ],
)
def test_malformed_and_error_replies(server, behaviour, pattern, attempts):
    server.behaviour = behaviour
    lmm = make_lmm(f"http://127.0.0.1:{server.port}/v1", retries=1, retry_wait=0.0)
    with pytest.raises(Sem3RError, match=pattern) as info:
        lmm.chat("hello", [np.zeros((2, 2, 3), np.uint8)])
    assert "\n" not in str(info.value)
    assert len(server.requests) == attempts


def test_unreachable_endpoint_fails_at_once():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lmm = make_lmm(f"http://127.0.0.1:{port}/v1", retries=3, retry_wait=10.0)
    start = time.monotonic()
    with pytest.raises(Sem3RError, match=rf"^cannot reach the LMM endpoint http://127.0.0.1:{port}/v1/chat/completions: connection refused$"):
        lmm.chat("hello")
    assert time.monotonic() - start < 5.0  # not retried with the 10 s wait


def test_bad_inputs():
    with pytest.raises(Sem3RError, match="uint8"):
        make_lmm("http://127.0.0.1:9/v1").chat("x", [np.zeros((2, 2, 3), np.float32)])
    with pytest.raises(Sem3RError, match="unknown option.*temprature"):
        make_lmm("http://127.0.0.1:9/v1", temprature=0.2)
    with pytest.raises(Sem3RError, match="timeout > 0"):
        make_lmm("http://127.0.0.1:9/v1", timeout=0)


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Yes.", True), ("yes, it is", True), ("No", False), ("**No**", False), ("Y", True), ("n", False),
        ("  YES!", True), ("Nope, that is a table.", False), ("True", True), ("The answer is yes.", True),
        ("The answer: no.", False), ("Maybe", None), ("", None), ("I cannot tell.", None),
        ("It could be yes or no.", None), ("Not sure", None), ("Yesterday", None), ("None of them", None),
    ],
)
def test_parse_yes_no(reply, expected):
    assert parse_yes_no(reply) is expected


def test_transformers_missing_path_names_it(tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(Sem3RError, match=f"model path '{missing}' does not exist"):
        make_lmm(str(missing))


def test_transformers_unloadable_directory_names_it(tmp_path):
    with pytest.raises(Sem3RError, match=f"^cannot load the vision-language model '{tmp_path}': ") as info:
        TransformersLMM(TransformersLMMConfig(str(tmp_path)))
    assert "\n" not in str(info.value)


class FakeProcessor:
    def __init__(self):
        self.calls = []

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        self.calls.append(("template", messages, tokenize, add_generation_prompt))
        return "<prompt>"

    def __call__(self, text, images, return_tensors):
        self.calls.append(("encode", text, images, return_tensors))
        return {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}

    def batch_decode(self, ids, skip_special_tokens):
        return [" " + " ".join(str(int(t)) for t in ids[0]) + " "]


class FakeModel:
    def generate(self, input_ids, attention_mask, max_new_tokens, do_sample):
        self.kwargs = {"max_new_tokens": max_new_tokens, "do_sample": do_sample}
        return torch.cat([input_ids, torch.tensor([[41, 42]])], dim=1)


def test_transformers_chat_builds_messages_and_decodes_new_tokens():
    processor, model = FakeProcessor(), FakeModel()
    lmm = TransformersLMM.from_components(TransformersLMMConfig("fake", max_new_tokens=9), processor, model)
    images = [np.full((3, 4, 3), 7, np.uint8), np.zeros((2, 2, 3), np.uint8)]
    assert lmm.chat("Same chair?", images) == "41 42"  # the prompt's tokens 5 6 7 are cut off
    (_, messages, tokenize, add_prompt), (_, text, pil, tensors) = processor.calls
    assert messages == transformers_messages("Same chair?", 2)
    assert messages[0]["content"][-1] == {"type": "text", "text": "Same chair?"}
    assert [p["type"] for p in messages[0]["content"]] == ["image", "image", "text"]
    assert tokenize is False and add_prompt is True and text == ["<prompt>"] and tensors == "pt"
    assert [im.size for im in pil] == [(4, 3), (2, 2)] and np.asarray(pil[0])[0, 0].tolist() == [7, 7, 7]
    assert model.kwargs == {"max_new_tokens": 9, "do_sample": False}
