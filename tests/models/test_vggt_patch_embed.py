import torch
import torch.nn.functional as F

from sem3r.models.vggt.patch_embed import DINOv2Encoder



def _encoder(**kw):
    torch.manual_seed(0)
    return DINOv2Encoder(**{"img_size": 56, "embed_dim": 32, "depth": 1, "num_heads": 2, **kw})


def test_position_embedding_at_native_grid_is_the_stored_one():
    enc = _encoder()
    assert enc.pos_embed.shape == (1, 1 + 4 * 4, 32)
    assert enc.interpolate_pos_encoding(4, 4, torch.float32) is enc.pos_embed
    # the resize path at the native size reproduces it as well (bicubic hits the samples exactly)
    grid = enc.pos_embed[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(4, 4), mode="bicubic", antialias=True)
    torch.testing.assert_close(resized, grid)


def test_position_embedding_interpolation_keeps_rows_and_columns_apart():
    enc = _encoder()
    with torch.no_grad():
        enc.pos_embed.zero_()
        enc.pos_embed[0, 0] = 7.0  # class token's embedding is kept as is
        rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
        enc.pos_embed[0, 1:, 0] = rows.flatten()
        enc.pos_embed[0, 1:, 1] = cols.flatten()
    out = enc.interpolate_pos_encoding(3, 6, torch.float32)
    assert out.shape == (1, 1 + 3 * 6, 32)
    assert torch.all(out[0, 0] == 7.0)
    grid = out[0, 1:].reshape(3, 6, 32)
    # channel 0 (row ramp) varies along rows only, channel 1 (column ramp) along columns only
    torch.testing.assert_close(grid[:, :, 0], grid[:, :1, 0].expand(3, 6))
    torch.testing.assert_close(grid[:, :, 1], grid[:1, :, 1].expand(3, 6))
    assert torch.all(grid[1:, 0, 0] > grid[:-1, 0, 0]) and torch.all(grid[0, 1:, 1] > grid[0, :-1, 1])


def test_forward_returns_normalised_patch_tokens_row_major():
    enc = _encoder(num_register_tokens=4).eval()
    images = torch.randn(2, 3, 28, 42)
    tokens = enc(images)
    assert tokens.shape == (2, 2 * 3, 32)
    # final LayerNorm (no class / register tokens in the output)
    torch.testing.assert_close(tokens.mean(-1), torch.zeros(2, 6), atol=1e-5, rtol=0)
    # a patch change reaches every token through attention but most strongly its own
    changed = images.clone()
    changed[:, :, 14:28, 28:42] += 1.0  # patch (row 1, col 2) = token 5
    delta = (enc(changed) - tokens).norm(dim=-1)
    assert torch.all(delta.argmax(dim=1) == 5)


def test_mask_token_is_frozen():
    enc = _encoder()
    assert not enc.mask_token.requires_grad
    assert {"cls_token", "pos_embed", "register_tokens", "mask_token"} <= {n for n, _ in enc.named_parameters()}
