import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from sem3r.errors import Sem3RError
from sem3r.models import Segmenter3D, Segmenter3DConfig
from sem3r.models.segmenter3d import (
    DecoderLayer,
    attention_mask_from_logits,
    fourier_features,
    normalize_points,
    pool_superpoints,
)

CONFIG = Segmenter3DConfig(feature_dim=6, text_dim=8, dim=32, heads=2, encoder_layers=2, decoder_layers=3,
                           pos_frequencies=4)


def make_model(config: Segmenter3DConfig = CONFIG, seed: int = 0) -> Segmenter3D:
    torch.manual_seed(seed)
    return Segmenter3D(config).eval()


def make_inputs(points: int, superpoints: int, queries: int, classes: int, seed: int = 0,
                config: Segmenter3DConfig = CONFIG) -> dict:
    """A random scene on a 1/256 grid (so that adding dyadic offsets is exact in float32)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.cat([torch.arange(superpoints), torch.randint(0, superpoints, (points - superpoints,), generator=g)])
    return {
        "xyz": torch.randint(0, 1024, (points, 3), generator=g).float() / 256,
        "colors": torch.rand(points, 3, generator=g),
        "normals": F.normalize(torch.randn(points, 3, generator=g), dim=1),
        "features": torch.randn(points, config.feature_dim, generator=g),
        "superpoints": ids[torch.randperm(points, generator=g)],
        "num_superpoints": superpoints,
        "text": F.normalize(torch.randn(classes, config.text_dim, generator=g), dim=1),
        "query_superpoints": torch.randperm(superpoints, generator=g)[:queries],
    }


def run(model: Segmenter3D, inputs: dict) -> dict:
    with torch.no_grad():
        return model(**inputs)


def assert_outputs_close(a: dict, b: dict, atol: float) -> None:
    for key in ("mask_logits", "class_logits", "superpoint_features"):
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0)
    for aux_a, aux_b in zip(a["aux"], b["aux"], strict=True):
        torch.testing.assert_close(aux_a["mask_logits"], aux_b["mask_logits"], atol=atol, rtol=0)
        torch.testing.assert_close(aux_a["class_logits"], aux_b["class_logits"], atol=atol, rtol=0)


@pytest.mark.parametrize("points, superpoints, queries, classes", [(40, 4, 1, 1), (150, 12, 5, 7), (30, 30, 30, 2)])
def test_output_shapes(points, superpoints, queries, classes):
    model = make_model()
    inputs = make_inputs(points, superpoints, queries, classes)
    out = run(model, inputs)
    assert out["mask_logits"].shape == (queries, superpoints)
    assert out["class_logits"].shape == (queries, classes)
    assert out["superpoint_features"].shape == (superpoints, CONFIG.dim)
    assert torch.equal(out["query_superpoints"], inputs["query_superpoints"])
    assert len(out["aux"]) == CONFIG.decoder_layers
    for aux in out["aux"]:
        assert aux["mask_logits"].shape == (queries, superpoints) and aux["class_logits"].shape == (queries, classes)
    assert all(torch.isfinite(out[k]).all() for k in ("mask_logits", "class_logits", "superpoint_features"))


def test_initial_class_probabilities_are_small():
    config = Segmenter3DConfig(feature_dim=6, text_dim=64, dim=32, heads=2)
    out = run(make_model(config), make_inputs(100, 10, 8, 20, config=config))
    # bias -4, and at the default text size a fresh class projection has |cos| ~ 1/8, so the
    # logit -4 + 14.3 cos stays clearly negative for most pairs (sigmoid-focal prior)
    for prediction in [out, *out["aux"]]:
        assert torch.sigmoid(prediction["class_logits"]).mean() < 0.1


def test_same_seed_same_model_and_outputs():
    inputs = make_inputs(80, 8, 3, 4)
    assert_outputs_close(run(make_model(seed=3), inputs), run(make_model(seed=3), inputs), atol=0)
    differs = run(make_model(seed=4), inputs)["mask_logits"] - run(make_model(seed=3), inputs)["mask_logits"]
    assert differs.abs().max() > 1e-3


def test_translation_and_scale_invariance():
    model = make_model()
    inputs = make_inputs(120, 10, 4, 3)
    reference = run(model, inputs)
    shifted = run(model, {**inputs, "xyz": inputs["xyz"] + torch.tensor([7.5, -3.25, 100.0])})
    assert_outputs_close(reference, shifted, atol=1e-4)
    scaled = run(model, {**inputs, "xyz": inputs["xyz"] * 4})
    assert_outputs_close(reference, scaled, atol=1e-4)


def test_point_order_does_not_matter():
    model = make_model()
    inputs = make_inputs(150, 12, 5, 4)
    perm = torch.randperm(150, generator=torch.Generator().manual_seed(1))
    permuted = {k: v[perm] if k in ("xyz", "colors", "normals", "features", "superpoints") else v for k, v in inputs.items()}
    assert_outputs_close(run(model, inputs), run(model, permuted), atol=1e-5)


def test_text_rows_permute_class_columns():
    model = make_model()
    inputs = make_inputs(100, 10, 4, 6)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    a, b = run(model, inputs), run(model, {**inputs, "text": inputs["text"][perm]})
    torch.testing.assert_close(b["class_logits"], a["class_logits"][:, perm], atol=1e-6, rtol=0)
    torch.testing.assert_close(b["mask_logits"], a["mask_logits"], atol=0, rtol=0)


def test_query_order_permutes_rows():
    model = make_model()
    inputs = make_inputs(100, 10, 6, 3)
    perm = torch.tensor([5, 2, 0, 4, 1, 3])
    a, b = run(model, inputs), run(model, {**inputs, "query_superpoints": inputs["query_superpoints"][perm]})
    torch.testing.assert_close(b["mask_logits"], a["mask_logits"][perm], atol=1e-5, rtol=0)
    torch.testing.assert_close(b["class_logits"], a["class_logits"][perm], atol=1e-5, rtol=0)
    for aux_a, aux_b in zip(a["aux"], b["aux"], strict=True):
        torch.testing.assert_close(aux_b["mask_logits"], aux_a["mask_logits"][perm], atol=1e-5, rtol=0)


def test_empty_superpoints_change_nothing_else():
    model = make_model()
    inputs = make_inputs(100, 10, 4, 3)
    padded = run(model, {**inputs, "num_superpoints": 13})  # ids 10, 11, 12 carry no point
    reference = run(model, inputs)
    assert all(torch.isfinite(padded[k]).all() for k in ("mask_logits", "class_logits", "superpoint_features"))
    torch.testing.assert_close(padded["mask_logits"][:, :10], reference["mask_logits"], atol=1e-5, rtol=0)
    torch.testing.assert_close(padded["class_logits"], reference["class_logits"], atol=1e-5, rtol=0)
    torch.testing.assert_close(padded["superpoint_features"][:10], reference["superpoint_features"], atol=1e-5, rtol=0)
    # an empty superpoint may seed a query without producing NaN
    seeded = run(model, {**inputs, "num_superpoints": 13, "query_superpoints": torch.tensor([11, 0])})
    assert torch.isfinite(seeded["mask_logits"]).all() and torch.isfinite(seeded["class_logits"]).all()


def test_attention_mask_from_logits_by_hand():
    logits = torch.tensor([[0.5, -0.1, 0.0, 2.0],
                           [-1.0, -2.0, -0.5, -3.0],
                           [-1.0, 3.0, -1.0, -1.0]])
    expected = [[True, False, False, True], [True, True, True, True], [False, True, False, False]]
    assert attention_mask_from_logits(logits).tolist() == expected
    nonempty = torch.tensor([True, True, True, False])
    expected_nonempty = [[True, False, False, False], [True, True, True, False], [False, True, False, False]]
    assert attention_mask_from_logits(logits, nonempty).tolist() == expected_nonempty


def test_masked_cross_attention_ignores_superpoints_outside_the_mask():
    torch.manual_seed(0)
    layer = DecoderLayer(16, 2, 2.0).eval()
    queries, query_pos = torch.randn(3, 16), torch.randn(3, 16)
    memory, memory_pos = torch.randn(6, 16), torch.randn(6, 16)
    allowed = torch.tensor([True, False, True, False, False, False]).expand(3, 6)  # set A = {0, 2}
    reference = layer(queries, query_pos, memory, memory_pos, allowed)
    outside, inside = memory.clone(), memory.clone()
    outside[[1, 3, 4, 5]] = torch.randn(4, 16) * 10
    inside[2] = torch.randn(16) * 10
    torch.testing.assert_close(layer(queries, query_pos, outside, memory_pos, allowed), reference, atol=1e-6, rtol=0)
    assert (layer(queries, query_pos, inside, memory_pos, allowed) - reference).abs().max() > 1e-2


def test_each_layer_is_masked_by_the_previous_prediction():
    model = make_model()
    inputs = make_inputs(120, 10, 5, 3)
    seen = []
    hooks = [layer.register_forward_pre_hook(lambda _, args: seen.append(args[4].clone())) for layer in model.decoder.layers]
    out = run(model, inputs)
    for hook in hooks:
        hook.remove()
    previous = [aux["mask_logits"] for aux in out["aux"]]
    assert len(seen) == len(previous) == CONFIG.decoder_layers
    for allowed, logits in zip(seen, previous, strict=True):
        assert torch.equal(allowed, attention_mask_from_logits(logits))
    assert any(not a.all() for a in seen)  # the masks actually restrict something


def test_pool_superpoints_by_hand():
    values = torch.tensor([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0], [-2.0, 0.0]])
    ids = torch.tensor([2, 0, 2, 0])
    pooled = pool_superpoints(values, ids, 4)
    assert pooled.tolist() == [[0.5, 10.0], [0.0, 0.0], [3.0, 20.0], [0.0, 0.0]]
    centroids = Segmenter3D.superpoint_centroids(values[:, :1].expand(4, 3), ids, 3)
    assert centroids[:, 0].tolist() == [0.5, 0.0, 3.0]
    with pytest.raises(Sem3RError, match="superpoint ids"):
        pool_superpoints(values, torch.tensor([0, 1, 2, 4]), 4)


def test_normalize_points_and_fourier_features():
    x = normalize_points(torch.tensor([[1.0, 1.0, 1.0], [3.0, 1.0, 1.0], [2.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))
    assert x.tolist() == [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]
    assert torch.isfinite(normalize_points(torch.ones(5, 3))).all()
    f = fourier_features(torch.tensor([[0.25, 0.0, 0.5]]), 2)
    expected = [0.25, 0.0, 0.5, 0.70710678, 0.0, 1.0, 1.0, 0.0, 0.0, 0.70710678, 1.0, 0.0, 0.0, 1.0, -1.0]
    torch.testing.assert_close(f[0], torch.tensor(expected), atol=1e-6, rtol=0)


def test_a_few_steps_learn_a_toy_segmentation():
    """Two groups of superpoints, one query seeded in each, targets: the seed's group."""
    config = Segmenter3DConfig(feature_dim=2, text_dim=8, dim=32, heads=2, encoder_layers=1, decoder_layers=2,
                               pos_frequencies=2)
    model = make_model(config).train()
    g = torch.Generator().manual_seed(0)
    xyz = torch.rand(160, 3, generator=g)
    xyz[:80, 0] -= 2.0  # group A at x < 0, group B at x > 0
    superpoints = torch.cat([torch.arange(80) % 4, 4 + torch.arange(80) % 4])
    inputs = {
        "xyz": xyz, "colors": torch.rand(160, 3, generator=g), "normals": torch.zeros(160, 3),
        "features": torch.randn(160, 2, generator=g), "superpoints": superpoints, "num_superpoints": 8,
        "text": F.normalize(torch.randn(3, 8, generator=g), dim=1), "query_superpoints": torch.tensor([1, 6]),
    }
    target = torch.tensor([[1.0] * 4 + [0.0] * 4, [0.0] * 4 + [1.0] * 4])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        out = model(**inputs)
        logits = [out["mask_logits"]] + [aux["mask_logits"] for aux in out["aux"]]
        loss = sum(F.binary_cross_entropy_with_logits(m, target) for m in logits) / len(logits)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert ((out["mask_logits"] > 0).float() == target).all()


@pytest.mark.parametrize("fmt", ["torch", "safetensors"])
def test_state_dict_round_trip(tmp_path, fmt):
    model = make_model(seed=0)
    inputs = make_inputs(90, 9, 3, 4)
    path = tmp_path / f"model.{fmt}"
    if fmt == "torch":
        torch.save(model.state_dict(), path)
        state = torch.load(path, weights_only=True)
    else:
        save_file(model.state_dict(), path)
        state = load_file(path)
    restored = Segmenter3D(Segmenter3DConfig.from_dict(model.config.to_dict()))
    restored.load_state_dict(state, strict=True)
    assert_outputs_close(run(model, inputs), run(restored.eval(), inputs), atol=0)


@pytest.mark.parametrize("change, message", [
    (lambda i: {"colors": i["colors"][:-1]}, "colors has shape"),
    (lambda i: {"features": torch.zeros(len(i["xyz"]), 5)}, "features has shape"),
    (lambda i: {"superpoints": i["superpoints"][:-1]}, "superpoints has 59 entries"),
    (lambda i: {"superpoints": i["superpoints"].clone().index_fill_(0, torch.tensor([3]), 6)}, "outside \\[0, 6\\)"),
    (lambda i: {"superpoints": i["superpoints"].float()}, "integer"),
    (lambda i: {"query_superpoints": torch.tensor([0, -1])}, "query_superpoints has ids"),
    (lambda i: {"features": i["features"].clone().index_fill_(0, torch.tensor([7]), float("nan"))}, "NaN or inf \\(row 7\\)"),
    (lambda i: {"xyz": i["xyz"].clone().index_fill_(0, torch.tensor([2]), float("inf"))}, "xyz contains NaN or inf"),
    (lambda i: {"text": torch.zeros(0, CONFIG.text_dim)}, "no classes"),
    (lambda i: {"text": torch.zeros(3, 4)}, "text has shape"),
    (lambda i: {"num_superpoints": 0}, "num_superpoints must be"),
    (lambda i: {"normals": None}, "normals must be a float tensor"),
    (lambda i: {"xyz": torch.zeros(0, 3)}, "no points"),
])
def test_bad_input_raises(change, message):
    inputs = make_inputs(60, 6, 2, 3)
    with pytest.raises(Sem3RError, match=message) as info:
        make_model()(**{**inputs, **change(inputs)})
    assert "\n" not in str(info.value)


def test_unused_inputs_may_be_none():
    config = Segmenter3DConfig(feature_dim=0, text_dim=8, dim=16, heads=2, use_colors=False, use_normals=False)
    inputs = make_inputs(50, 5, 2, 3, config=config)
    out = run(make_model(config), {**inputs, "colors": None, "normals": None})
    assert out["mask_logits"].shape == (2, 5)


@pytest.mark.parametrize("doc, message", [
    ({"dim": 30, "heads": 4}, "multiple of heads"),
    ({"decoder_layers": 0}, "decoder_layers"),
    ({"dropout": 1.0}, "dropout"),
    ({"width": 3}, "unknown segmenter3d config keys"),
])
def test_config_validation(doc, message):
    with pytest.raises(Sem3RError, match=message):
        Segmenter3DConfig.from_dict(doc)
