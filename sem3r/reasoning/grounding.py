"""QA scene grounding with an LMM (IGGT section 3.3, Fig. 4): highlight one instance, ask yes/no, keep the yeses.

For every 3D-consistent instance the views where it covers the most pixels are rendered with the
instance highlighted, the LMM is asked the user's question about "the object highlighted in red"
once per instance with all those views, and the instances answered "yes" form the grounding; the
union of their masks is the segmentation output.

Choices the paper leaves open, made here:

* **Highlight**: the instance's outline (pixels of the mask removed by ``outline_width`` 1-pixel
  erosions with a 4-connected cross; pixels on the image border count as outline) is painted in
  ``color``, the interior keeps its colours, and every pixel outside the mask is darkened to
  ``1 - dim_others`` of its value, so the object stands out without hiding its appearance.
* **Views**: the ``max_views`` views with the most pixels of the instance (ties: earlier view
  first), in view order, so that the model sees the object where it is most visible.
* **Unclear replies** (neither yes nor no, see :func:`~sem3r.reasoning.lmm.parse_yes_no`) are
  recorded as ``None`` and not kept. Transport errors are not swallowed: an unreachable endpoint
  stops grounding at the first instance with its one-line :class:`Sem3RError`.

Example:
    >>> import numpy as np
    >>> image = np.full((5, 5, 3), 100, np.uint8)
    >>> mask = np.zeros((5, 5), bool); mask[1:4, 1:4] = True
    >>> out = highlight_instance(image, mask, GroundingConfig())
    >>> out[2, 2].tolist(), out[1, 1].tolist(), out[0, 0].tolist()
    ([100, 100, 100], [255, 0, 0], [50, 50, 50])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from sem3r.errors import Sem3RError
from sem3r.reasoning.lmm import LMM, parse_yes_no
from sem3r.scene import Scene

_CROSS = ndimage.generate_binary_structure(2, 1)


@dataclass
class GroundingConfig:
    """Settings of :func:`highlight_instance` and :func:`ground_instances`.

    Attributes:
        max_views: views shown per instance (those where it covers the most pixels).
        outline: paint the mask's outline in ``color``.
        outline_width: outline thickness in pixels (1-pixel erosions).
        dim_others: how much to darken pixels outside the mask, in ``[0, 1]`` (0 = unchanged,
            1 = black).
        color: RGB outline colour.
        prompt: the question template; ``{question}`` is replaced by the user's question.
        progress: show a tqdm bar over instances.
    """

    max_views: int = 3
    outline: bool = True
    outline_width: int = 1
    dim_others: float = 0.5
    color: tuple[int, int, int] = (255, 0, 0)
    prompt: str = "Look at the object highlighted in red. {question} Answer yes or no."
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_views < 1 or self.outline_width < 1:
            raise Sem3RError(f"max_views and outline_width must be >= 1, got {self.max_views} and {self.outline_width}")
        if not 0.0 <= self.dim_others <= 1.0:
            raise Sem3RError(f"dim_others must be in [0, 1], got {self.dim_others}")
        if len(self.color) != 3 or not all(0 <= int(c) <= 255 for c in self.color):
            raise Sem3RError(f"color must be three values in [0, 255], got {self.color}")
        if "{question}" not in self.prompt:
            raise Sem3RError(f"the grounding prompt must contain '{{question}}', got '{self.prompt}'")


@dataclass
class GroundingResult:
    """What the LMM answered for each instance.

    Attributes:
        kept: ids answered yes, ascending.
        answers: id -> ``True`` (yes), ``False`` (no) or ``None`` (unclear reply).
        replies: id -> the raw reply text.
        views: id -> the view indices shown for it, in view order.
    """

    kept: list[int]
    answers: dict[int, bool | None]
    replies: dict[int, str]
    views: dict[int, list[int]] = field(default_factory=dict)

    @property
    def num_unclear(self) -> int:
        """How many replies were neither yes nor no."""
        return sum(answer is None for answer in self.answers.values())

    def masks(self, instance_masks: np.ndarray) -> np.ndarray:
        """The grounding as a segmentation: the union of the kept instances' masks.

        Args:
            instance_masks: ``(N, H, W) int32`` instance ids, -1 = unlabelled.

        Returns:
            ``(N, H, W) bool``.
        """
        return np.isin(instance_masks, np.asarray(self.kept, np.int32))


def highlight_instance(image: np.ndarray, mask: np.ndarray, config: GroundingConfig | None = None) -> np.ndarray:
    """Render one instance highlighted: coloured outline, untouched interior, darkened rest.

    Args:
        image: ``(H, W, 3) uint8`` RGB.
        mask: ``(H, W) bool`` the instance's pixels.
        config: outline, colour and dimming; defaults to :class:`GroundingConfig`.

    Returns:
        ``(H, W, 3) uint8``: outside the mask ``round(image * (1 - dim_others))``; on the outline
        ``color``; elsewhere inside the mask ``image``.
    """
    config = config or GroundingConfig()
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise Sem3RError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if mask.shape != image.shape[:2]:
        raise Sem3RError(f"mask must have shape {image.shape[:2]} to match the image, got {mask.shape}")
    mask = mask.astype(bool)
    dimmed = np.rint(image.astype(np.float32) * (1.0 - config.dim_others)).astype(np.uint8)
    out = np.where(mask[..., None], image, dimmed)
    if config.outline:
        interior = ndimage.binary_erosion(mask, _CROSS, iterations=config.outline_width, border_value=0)
        out[mask & ~interior] = np.asarray(config.color, np.uint8)
    return out


def _pixel_counts(instance_masks: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``(N, K) int64`` pixels of each of ``ids`` (sorted) in each view."""
    n = instance_masks.shape[0]
    flat = instance_masks.reshape(n, -1)
    pos = np.searchsorted(ids, flat).clip(0, len(ids) - 1)
    hit = ids[pos] == flat
    view = np.broadcast_to(np.arange(n)[:, None], flat.shape)
    return np.bincount(view[hit] * len(ids) + pos[hit], minlength=n * len(ids)).reshape(n, len(ids))


def ground_instances(
    scene: Scene,
    question: str,
    lmm: LMM,
    config: GroundingConfig | None = None,
    ids: Sequence[int] | None = None,
) -> GroundingResult:
    """Ask the LMM a yes/no question about each instance and keep those answered yes.

    Args:
        scene: needs ``images (N, H, W, 3) uint8`` and ``instance_masks (N, H, W) int32``.
        question: e.g. ``"Is this a chair next to the window?"``.
        lmm: any backend with ``chat(prompt, images) -> str``.
        config: views, highlight and prompt; defaults to :class:`GroundingConfig`.
        ids: instance ids to ask about; default every id ``>= 0`` in ``instance_masks``.

    Returns:
        The kept ids, each instance's parsed answer, its raw reply and the views shown.

    Raises:
        Sem3RError: no instance masks, an empty question, an id that appears in no view, or an
            LMM transport error (raised at the first instance it happens on).
    """
    config = config or GroundingConfig()
    if scene.instance_masks is None:
        raise Sem3RError("QA grounding needs scene.instance_masks; run instance segmentation first")
    if not question.strip():
        raise Sem3RError("QA grounding needs a non-empty question")
    masks = scene.instance_masks
    present = np.unique(masks[masks >= 0]).astype(np.int32)
    asked = present if ids is None else np.unique(np.asarray(ids, np.int64))
    missing = np.setdiff1d(asked, present)
    if missing.size:
        raise Sem3RError(f"instance {int(missing[0])} appears in no view of the scene")
    counts = _pixel_counts(masks, asked.astype(np.int32)) if asked.size else np.zeros((len(masks), 0), np.int64)
    prompt = config.prompt.replace("{question}", question.strip())
    result = GroundingResult(kept=[], answers={}, replies={}, views={})
    for k in tqdm(range(asked.size), desc="grounding", unit="instance", disable=not config.progress, leave=False):
        iid = int(asked[k])
        order = np.argsort(-counts[:, k], kind="stable")[: config.max_views]
        views = sorted(int(v) for v in order if counts[v, k] > 0)
        images = [highlight_instance(scene.images[v], masks[v] == iid, config) for v in views]
        reply = lmm.chat(prompt, images)
        answer = parse_yes_no(reply)
        result.replies[iid], result.answers[iid], result.views[iid] = reply, answer, views
        if answer:
            result.kept.append(iid)
    return result
