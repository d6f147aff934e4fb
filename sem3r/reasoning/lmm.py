"""Large multimodal model (LMM) backends: one ``chat(prompt, images) -> str`` behind several transports.

IGGT (section 3.3, QA scene grounding) asks an off-the-shelf LMM (GPT-4o, Qwen2.5-VL) yes/no
questions about highlighted instances. Any model that answers a text prompt about a few RGB images
fits the :class:`LMM` protocol; three backends ship here:

* :class:`OpenAIEndpointLMM`: any server speaking the OpenAI chat-completions protocol (OpenAI,
  vLLM, llama.cpp, Ollama, LM Studio, ...). Standard library only: ``urllib`` for HTTP, images sent
  inline as PNG ``data:`` URLs. Every transport failure becomes a one-line :class:`Sem3RError`.
* :class:`TransformersLMM`: a Hugging Face vision-language model (e.g. the Qwen2-VL family) loaded
  from a local path or a hub id with ``AutoProcessor`` + ``AutoModelForImageTextToText``.
* :class:`~sem3r.reasoning.g2vlm_lmm.G2VLMLMM` (spec ``g2vlm:PATH``): G2VLM's own chat path, with its
  geometry and semantic branches on the scene's views.

Choices made here: greedy decoding (temperature 0) so that answers are repeatable; images come
after the text in an OpenAI message (the order the protocol's examples use) and before it in a
Hugging Face chat template (the order Qwen2-VL's examples use); only timeouts and HTTP 429/5xx are
retried (``retries`` extra attempts), a refused connection is reported at once.

Example:
    >>> parse_yes_no("**Yes**, it is the same chair."), parse_yes_no("No."), parse_yes_no("Maybe")
    (True, False, None)
    >>> lmm = make_lmm("http://127.0.0.1:8000/v1", model="qwen2-vl")
    >>> lmm.url
    'http://127.0.0.1:8000/v1/chat/completions'
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, fields
from http.client import HTTPException
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from sem3r.errors import Sem3RError, require

API_KEY_ENV = "SEM3R_LMM_API_KEY"
"""Environment variable read for the endpoint's API key when the config gives none."""

_MESSAGE_LIMIT = 200
_YES = frozenset({"yes", "y", "yeah", "yep", "yup", "true", "correct", "affirmative"})
_NO = frozenset({"no", "n", "nope", "nah", "false", "incorrect", "negative"})
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@runtime_checkable
class LMM(Protocol):
    """A multimodal chat model: answers one text prompt about zero or more images."""

    def chat(self, prompt: str, images: Sequence[np.ndarray] = ()) -> str:
        """Answer ``prompt`` about ``images``.

        Args:
            prompt: the question, plain text.
            images: each ``(H, W, 3) uint8`` RGB; sizes may differ.

        Returns:
            The model's reply text.
        """
        ...


def parse_yes_no(reply: str) -> bool | None:
    """Read a yes/no answer from a free-form model reply.

    The first word decides (after dropping markdown and punctuation, case-insensitive): ``yes``,
    ``y``, ``yeah``, ``true``, ``correct`` ... mean yes; ``no``, ``n``, ``nope``, ``false`` ...
    mean no. A reply that starts otherwise ("The answer is yes") is read from the words
    ``yes``/``no`` it contains when only one of the two occurs; anything else is unclear.

    Args:
        reply: the model's text.

    Returns:
        ``True`` for yes, ``False`` for no, ``None`` when unclear.

    Example:
        >>> [parse_yes_no(r) for r in ["Yes.", "yes, it is", "**No**", "Y", "I cannot tell", "The answer: no"]]
        [True, True, False, True, None, False]
    """
    words = re.findall(r"[a-z]+", reply.lower())
    if not words:
        return None
    if words[0] in _YES:
        return True
    if words[0] in _NO:
        return False
    has_yes, has_no = "yes" in words, "no" in words
    return True if has_yes and not has_no else False if has_no and not has_yes else None


def _one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """Collapse whitespace and cut ``text`` to ``limit`` characters (for error messages)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Return ``images`` as arrays after checking each is ``(H, W, 3) uint8``."""
    arrays = [np.asarray(im) for im in images]
    for i, im in enumerate(arrays):
        if im.ndim != 3 or im.shape[-1] != 3 or im.dtype != np.uint8:
            raise Sem3RError(f"LMM image {i} must be uint8 (H, W, 3), got {im.dtype} {im.shape}")
    return arrays


def png_data_url(image: np.ndarray) -> str:
    """Encode an RGB image as a ``data:image/png;base64,...`` URL.

    Args:
        image: ``(H, W, 3) uint8`` RGB.

    Returns:
        The data URL (lossless PNG, so highlighted colours arrive exactly).

    Example:
        >>> png_data_url(np.zeros((2, 3, 3), np.uint8))[:22]
        'data:image/png;base64,'
    """
    (image,) = _check_images([image])
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def openai_messages(prompt: str, images: Sequence[np.ndarray] = ()) -> list[dict[str, Any]]:
    """One user message in the OpenAI chat format: the text part, then one ``image_url`` part per image.

    Args:
        prompt: the question.
        images: each ``(H, W, 3) uint8`` RGB.

    Returns:
        ``[{"role": "user", "content": [{"type": "text", ...}, {"type": "image_url", ...}, ...]}]``.

    Example:
        >>> [part["type"] for part in openai_messages("Same object?", [np.zeros((2, 2, 3), np.uint8)])[0]["content"]]
        ['text', 'image_url']
    """
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    content += [{"type": "image_url", "image_url": {"url": png_data_url(im)}} for im in _check_images(images)]
    return [{"role": "user", "content": content}]


@dataclass
class OpenAIEndpointConfig:
    """Settings of :class:`OpenAIEndpointLMM`.

    Attributes:
        base_url: the API root, e.g. ``"http://localhost:8000/v1"``; requests go to
            ``{base_url}/chat/completions``.
        model: the ``model`` field sent with each request.
        api_key: bearer token; ``None`` reads the ``SEM3R_LMM_API_KEY`` environment variable (no
            ``Authorization`` header when that is unset too).
        timeout: seconds to wait for the connection and for the answer of each attempt.
        max_tokens: longest reply, in tokens.
        temperature: sampling temperature (0 = greedy, repeatable).
        retries: extra attempts after a timeout or an HTTP 429/5xx answer.
        retry_wait: seconds between attempts.
    """

    base_url: str
    model: str = "default"
    api_key: str | None = None
    timeout: float = 30.0
    max_tokens: int = 64
    temperature: float = 0.0
    retries: int = 1
    retry_wait: float = 1.0


class OpenAIEndpointLMM:
    """An LMM behind an OpenAI-compatible ``/chat/completions`` HTTP endpoint.

    Args:
        config: where and how to ask; see :class:`OpenAIEndpointConfig`.

    Raises:
        Sem3RError: from :meth:`chat` when the endpoint cannot be reached, does not answer within
            ``timeout`` seconds, answers with an HTTP error, or returns a malformed reply.

    Example:
        >>> OpenAIEndpointLMM(OpenAIEndpointConfig("https://api.example.com/v1/")).url
        'https://api.example.com/v1/chat/completions'
    """

    def __init__(self, config: OpenAIEndpointConfig) -> None:
        check_endpoint_url(config.base_url)
        if config.timeout <= 0 or config.retries < 0 or config.retry_wait < 0:
            raise Sem3RError(
                f"LMM endpoint needs timeout > 0, retries >= 0 and retry_wait >= 0, got "
                f"{config.timeout}, {config.retries}, {config.retry_wait}"
            )
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"

    def request_body(self, prompt: str, images: Sequence[np.ndarray] = ()) -> dict[str, Any]:
        """The JSON body sent for one question.

        Args:
            prompt: the question.
            images: each ``(H, W, 3) uint8`` RGB.

        Returns:
            ``{"model", "messages", "max_tokens", "temperature"}``.
        """
        c = self.config
        return {"model": c.model, "messages": openai_messages(prompt, images), "max_tokens": c.max_tokens,
                "temperature": c.temperature}

    def chat(self, prompt: str, images: Sequence[np.ndarray] = ()) -> str:
        """Ask ``prompt`` about ``images`` and return ``choices[0].message.content``.

        Args:
            prompt: the question.
            images: each ``(H, W, 3) uint8`` RGB.

        Returns:
            The reply text, stripped.
        """
        data = json.dumps(self.request_body(prompt, images)).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self.config.api_key if self.config.api_key is not None else os.environ.get(API_KEY_ENV)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        attempt = 0
        while True:
            try:
                raw = self._post(data, headers)
            except _Retryable as exc:
                if attempt >= self.config.retries:
                    raise Sem3RError(str(exc)) from None
                attempt += 1
                time.sleep(self.config.retry_wait)
                continue
            return self._content(raw)

    def _post(self, data: bytes, headers: dict[str, str]) -> bytes:
        """POST once; return the body or raise :class:`_Retryable` / :class:`Sem3RError`."""
        url, timeout = self.url, self.config.timeout
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        too_slow = f"the LMM endpoint {url} did not answer within {timeout:g} s"
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            message = f"the LMM endpoint {url} answered HTTP {exc.code}: {_http_error_message(exc)}"
            if exc.code in _RETRY_STATUS:
                raise _Retryable(message) from None
            raise Sem3RError(message) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Retryable(too_slow) from None
            raise Sem3RError(f"cannot reach the LMM endpoint {url}: {_reason(exc.reason)}") from None
        except TimeoutError:
            raise _Retryable(too_slow) from None
        except HTTPException as exc:
            raise Sem3RError(f"the LMM endpoint {url} returned a malformed reply: {_one_line(repr(exc))}") from None
        except OSError as exc:
            raise Sem3RError(f"cannot reach the LMM endpoint {url}: {_reason(exc)}") from None

    def _content(self, raw: bytes) -> str:
        """Extract ``choices[0].message.content`` from a response body."""
        malformed = f"the LMM endpoint {self.url} returned a malformed reply: "
        try:
            reply = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise Sem3RError(malformed + f"not JSON ({_one_line(raw.decode('utf-8', 'replace'), 80)})") from None
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise Sem3RError(malformed + f"no choices[0].message.content in {_one_line(json.dumps(reply), 120)}") from None
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if not isinstance(content, str):
            raise Sem3RError(malformed + f"choices[0].message.content is {type(content).__name__}, not text")
        return content.strip()


def check_endpoint_url(url: str) -> str:
    """Check that ``url`` is a usable ``http(s)://HOST[:PORT][/PATH]`` API root and return it.

    Raises:
        Sem3RError: another scheme, whitespace or control characters, no host, a malformed host
            (e.g. an unclosed IPv6 bracket) or a port outside 0-65535, in one line.

    Example:
        >>> check_endpoint_url("http://[::1]:8000/v1")
        'http://[::1]:8000/v1'
    """
    expected = "expected e.g. http://localhost:8000/v1"
    if not isinstance(url, str) or not re.match(r"^https?://", url, re.IGNORECASE):
        raise Sem3RError(f"LMM endpoint must start with http:// or https://, got '{_one_line(url, 80)}'")
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        raise Sem3RError(f"LMM endpoint URL {_one_line(repr(url), 80)} contains whitespace or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise Sem3RError(f"malformed LMM endpoint URL '{url}': {_one_line(exc)}; {expected}") from None
    if not parts.hostname:
        raise Sem3RError(f"LMM endpoint URL '{url}' names no host; {expected}")
    return url


def check_lmm_spec(spec: str) -> str:
    """Check the form of an LMM spec (see :func:`make_lmm`) without loading anything; return it.

    Catches what would otherwise reach a backend as a confusing failure: an empty spec, a URL with
    a mistyped scheme (``http//host``, ``https:host``), a malformed endpoint URL, and an unknown
    ``NAME:`` prefix (``endpoint:``, ``openai:http://...``). A spec naming an existing path is
    always accepted.

    Raises:
        Sem3RError: one line naming the problem and the accepted forms.

    Example:
        >>> check_lmm_spec("g2vlm:runs/g2/model")
        'g2vlm:runs/g2/model'
    """
    forms = "use http(s)://HOST[:PORT]/v1, g2vlm:PATH, ross3d:PATH, or a model folder / hub id"
    if not isinstance(spec, str) or not spec.strip():
        raise Sem3RError(f"the LMM spec is empty; {forms}")
    if re.match(r"^https?://", spec, re.IGNORECASE):
        return check_endpoint_url(spec)
    if re.match(r"^https?(?::|//)", spec, re.IGNORECASE):
        raise Sem3RError(f"malformed LMM endpoint URL '{_one_line(spec, 80)}'; expected http://HOST[:PORT]/PATH")
    prefix = re.match(r"^([A-Za-z][\w.+-]+):", spec)
    if prefix and prefix.group(1) not in ("g2vlm", "ross3d") and not Path(spec).expanduser().exists():
        raise Sem3RError(f"unknown LMM backend '{prefix.group(1)}:' in '{_one_line(spec, 80)}'; {forms}")
    return spec


class _Retryable(Exception):
    """A failure worth another attempt (timeout, HTTP 429/5xx); its message is the final error line."""


def _reason(reason: object) -> str:
    """Short human text for a socket-level failure."""
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (ConnectionResetError, ConnectionAbortedError)):
        return "connection closed by the server"
    return _one_line(getattr(reason, "strerror", None) or reason)


def _http_error_message(exc: urllib.error.HTTPError) -> str:
    """The server's own message from an HTTP error body (OpenAI ``{"error": {"message"}}``, ``detail``, or text)."""
    try:
        body = exc.read().decode("utf-8", "replace")
    except OSError:
        body = ""
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        return _one_line(body or exc.reason or "no message")
    if isinstance(payload, dict):
        error = payload.get("error", payload.get("detail", payload.get("message", payload)))
        if isinstance(error, dict):
            error = error.get("message", error)
        return _one_line(error if isinstance(error, str) else json.dumps(error))
    return _one_line(body)


@dataclass
class TransformersLMMConfig:
    """Settings of :class:`TransformersLMM`.

    Attributes:
        model: a local directory or a Hugging Face hub id (e.g. ``"Qwen/Qwen2-VL-2B-Instruct"``).
        device: torch device the model runs on.
        max_new_tokens: longest reply, in tokens (greedy decoding).
    """

    model: str
    device: str = "cpu"
    max_new_tokens: int = 32


def transformers_messages(prompt: str, num_images: int) -> list[dict[str, Any]]:
    """One user message in the Hugging Face chat-template format: image placeholders, then the text.

    Args:
        prompt: the question.
        num_images: how many images the processor will receive with it.

    Returns:
        ``[{"role": "user", "content": [{"type": "image"}, ..., {"type": "text", "text": prompt}]}]``.

    Example:
        >>> transformers_messages("Same chair?", 2)[0]["content"]
        [{'type': 'image'}, {'type': 'image'}, {'type': 'text', 'text': 'Same chair?'}]
    """
    return [{"role": "user", "content": [{"type": "image"}] * num_images + [{"type": "text", "text": prompt}]}]


class TransformersLMM:
    """A Hugging Face vision-language model answering through its own chat template.

    Loads ``AutoProcessor`` and ``AutoModelForImageTextToText`` (``AutoModelForVision2Seq`` on older
    ``transformers``) from ``config.model``; needs the ``vlm`` extra.

    Args:
        config: which model and where to run it; see :class:`TransformersLMMConfig`.

    Raises:
        Sem3RError: the model path does not exist or the model cannot be loaded (names the model).
    """

    def __init__(self, config: TransformersLMMConfig) -> None:
        path = Path(config.model).expanduser()
        if (path.is_absolute() or config.model.startswith((".", "~"))) and not path.exists():
            raise Sem3RError(f"vision-language model path '{config.model}' does not exist")
        transformers = require("transformers", "vlm", "the transformers LMM backend")
        auto_model = getattr(transformers, "AutoModelForImageTextToText", None) or transformers.AutoModelForVision2Seq
        try:
            processor = transformers.AutoProcessor.from_pretrained(config.model)
            model = auto_model.from_pretrained(config.model).to(config.device).eval()
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            raise Sem3RError(f"cannot load the vision-language model '{config.model}': {_one_line(exc)}") from None
        self._setup(config, processor, model)

    @classmethod
    def from_components(cls, config: TransformersLMMConfig, processor: Any, model: Any) -> TransformersLMM:
        """Wrap an already loaded processor and model (no download, no disk access).

        Args:
            config: settings; ``config.model`` is only used in messages.
            processor: has ``apply_chat_template``, ``__call__(text=, images=, return_tensors=)`` and
                ``batch_decode``.
            model: has ``generate(**inputs, max_new_tokens=, do_sample=)`` returning ``(1, T) int64``
                token ids that start with the prompt's ids.

        Returns:
            The backend.
        """
        lmm = cls.__new__(cls)
        lmm._setup(config, processor, model)
        return lmm

    def _setup(self, config: TransformersLMMConfig, processor: Any, model: Any) -> None:
        self.config, self.processor, self.model = config, processor, model

    def chat(self, prompt: str, images: Sequence[np.ndarray] = ()) -> str:
        """Answer ``prompt`` about ``images`` with greedy decoding.

        Args:
            prompt: the question.
            images: each ``(H, W, 3) uint8`` RGB.

        Returns:
            The decoded new tokens, stripped.
        """
        import torch

        pil = [Image.fromarray(im) for im in _check_images(images)]
        text = self.processor.apply_chat_template(transformers_messages(prompt, len(pil)), tokenize=False,
                                                  add_generation_prompt=True)
        inputs = self.processor(text=[text], images=pil or None, return_tensors="pt")
        inputs = {k: v.to(self.config.device) if hasattr(v, "to") else v for k, v in dict(inputs).items()}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()


def lmm_config(config_cls: type, key: str, value: Any, spec: str, options: dict[str, Any]) -> Any:
    """``config_cls(**{key: value}, **options)`` for the LMM ``spec``.

    Raises:
        Sem3RError: an option ``config_cls`` does not have (the message lists the known ones).
    """
    allowed = {f.name for f in fields(config_cls)} - {key}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise Sem3RError(f"unknown option(s) {', '.join(unknown)} for the LMM '{spec}'; expected {', '.join(sorted(allowed))}")
    return config_cls(**{key: value}, **options)


def spec_checkpoint(spec: str, prefix: str) -> str:
    """The checkpoint of a ``"PREFIX:PATH"`` LMM spec; an empty PATH is an error.

    Example:
        >>> spec_checkpoint("g2vlm:runs/g2/model", "g2vlm:")
        'runs/g2/model'
    """
    path = spec.removeprefix(prefix)
    if not path.strip():
        raise Sem3RError(f"'{spec}' names no checkpoint; use {prefix}FOLDER or {prefix}OWNER/NAME")
    return path


def make_lmm(spec: str, **options: Any) -> LMM:
    """Build an LMM backend from a string.

    Args:
        spec: ``"http://..."`` or ``"https://..."`` for an OpenAI-compatible endpoint (its API root);
            ``"g2vlm:PATH"`` for G2VLM's own chat path (:class:`~sem3r.reasoning.g2vlm_lmm.G2VLMLMM`,
            PATH a checkpoint folder or hub id); ``"ross3d:PATH"`` for ROSS3D
            (:class:`~sem3r.reasoning.ross3d_lmm.Ross3DLMM`, which answers about a Scene's posed RGB-D views
            through ``chat_scene``); anything else is a local model directory or a hub id
            for :class:`TransformersLMM`.
        **options: fields of :class:`OpenAIEndpointConfig` (``model`` defaults to ``"default"``), of
            :class:`~sem3r.reasoning.g2vlm_lmm.G2VLMLMMConfig`, of
            :class:`~sem3r.reasoning.ross3d_lmm.Ross3DLMMConfig` or of :class:`TransformersLMMConfig`.

    Returns:
        The backend.

    Raises:
        Sem3RError: a malformed spec (see :func:`check_lmm_spec`), an option the chosen backend does
            not have, or a model that cannot be loaded.

    Example:
        >>> make_lmm("https://api.example.com/v1", model="gpt-4o", timeout=10.0).config.timeout
        10.0
    """
    check_lmm_spec(spec)
    if spec.startswith("g2vlm:"):
        from sem3r.reasoning.g2vlm_lmm import make_g2vlm_lmm

        return make_g2vlm_lmm(spec, **options)
    if spec.startswith("ross3d:"):
        from sem3r.reasoning.ross3d_lmm import make_ross3d_lmm

        return make_ross3d_lmm(spec, **options)
    if re.match(r"^https?://", spec, re.IGNORECASE):
        config_cls, key = OpenAIEndpointConfig, "base_url"
    else:
        config_cls, key = TransformersLMMConfig, "model"
    config = lmm_config(config_cls, key, spec, spec, options)
    return OpenAIEndpointLMM(config) if config_cls is OpenAIEndpointConfig else TransformersLMM(config)
