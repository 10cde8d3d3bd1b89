"""The Table 1 VAE, its λβ loss terms against hand computations, and model files."""

import math

import pytest
import torch

from lambdabeta.loss import kl_per_latent, lambda_beta_loss
from lambdabeta.model import VAE, load_model, save_model


def _table1_parameter_count(c: int, m: int) -> int:
    """Weights + biases of Table 1 for C channels and m latents, counted layer by layer."""
    k = 4 * 4
    encoder = (
        (c * 32 * k + 32)
        + (32 * 32 * k + 32)
        + (32 * 64 * k + 64)
        + (64 * 64 * k + 64)
        + (64 * 4 * 4 * 256 + 256)
        + (256 * 2 * m + 2 * m)
    )
    decoder = (
        (m * 256 + 256)
        + (256 * 64 * 4 * 4 + 64 * 4 * 4)
        + (64 * 64 * k + 64)
        + (64 * 32 * k + 32)
        + (32 * 32 * k + 32)
        + (32 * c * k + c)
    )
    return encoder + decoder


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_parameter_count(channels):
    model = VAE(channels, latent_dim=15)
    x = torch.rand(2, channels, 64, 64)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, 15)
    assert model.decode(mu).shape == (2, channels, 64, 64)
    logits, mu2, logvar2 = model(x, torch.zeros(2, 15))
    assert logits.shape == (2, channels, 64, 64)
    assert mu2.shape == logvar2.shape == (2, 15)
    assert sum(p.numel() for p in model.parameters()) == _table1_parameter_count(channels, 15)


def test_reparameterisation_uses_the_given_noise():
    torch.manual_seed(0)
    model = VAE(1, latent_dim=4)
    x = torch.rand(3, 1, 64, 64)
    noise = torch.randn(3, 4)
    logits, mu, logvar = model(x, noise)
    expected = model.decode(mu + torch.exp(0.5 * logvar) * noise)
    torch.testing.assert_close(logits, expected, rtol=0, atol=0)
    # zero noise decodes the posterior mean
    torch.testing.assert_close(model(x, torch.zeros(3, 4))[0], model.decode(mu), rtol=0, atol=0)


def test_wrong_image_size_is_refused():
    with pytest.raises(ValueError, match="1 × 64 × 64"):
        VAE(1).encode(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="in_channels"):
        VAE(0)


def test_kl_per_latent_known_posteriors():
    mu = torch.tensor([[1.0, 0.0, 0.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.0, math.log(2.0), 0.0]])
    expected = torch.tensor([[0.5, 0.0, 0.5 * (2.0 - 1.0 - math.log(2.0)), 2.0]])
    torch.testing.assert_close(kl_per_latent(mu, logvar), expected)


def test_loss_terms_by_hand():
    # image 0: all pixels 1 with logits 0; image 1: all pixels 0 with logits 2
    x = torch.stack([torch.ones(1, 64, 64), torch.zeros(1, 64, 64)])
    logits = torch.stack([torch.zeros(1, 64, 64), torch.full((1, 64, 64), 2.0)])
    mu = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    logvar = torch.zeros(2, 2)
    pixels = 64 * 64
    # BCE-with-logits(l, x) = log(1 + e^l) − x·l
    bce = (pixels * math.log(2.0) + pixels * math.log1p(math.exp(2.0))) / 2
    sig2 = 1.0 / (1.0 + math.exp(-2.0))
    l2 = (pixels * 0.25 + pixels * sig2**2) / 2
    kl_latents = [0.5, (0.0 + 2.0) / 2]  # batch means of ½μ²: (0.5, 0.5) and (0, 2)
    beta, lam = 3.0, 5.0
    terms = lambda_beta_loss(logits, x, mu, logvar, beta=beta, lam=lam)
    assert terms.bce.item() == pytest.approx(bce, rel=1e-6)
    assert terms.l2.item() == pytest.approx(l2, rel=1e-6)
    assert terms.kl_per_latent.tolist() == pytest.approx(kl_latents, rel=1e-6)
    assert terms.kl.item() == pytest.approx(sum(kl_latents), rel=1e-6)
    assert terms.loss.item() == pytest.approx(bce + beta * sum(kl_latents) + lam * l2, rel=1e-6)


def test_lambda_zero_reports_l2_without_differentiating_it():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 64, 64, requires_grad=True)
    x = (torch.rand(2, 1, 64, 64) > 0.5).float()
    mu, logvar = torch.randn(2, 3), torch.randn(2, 3)
    terms = lambda_beta_loss(logits, x, mu, logvar, beta=2.0, lam=0.0)
    assert terms.l2.item() > 0
    torch.testing.assert_close(terms.loss, terms.bce + 2.0 * terms.kl)
    (grad,) = torch.autograd.grad(terms.loss, logits)
    expected = (torch.sigmoid(logits) - x).detach() / 2  # ∂ mean-over-batch BCE / ∂ logits
    torch.testing.assert_close(grad, expected)


def test_lambda_weights_the_l2_gradient():
    torch.manual_seed(1)
    logits = torch.randn(2, 1, 64, 64, requires_grad=True)
    x = (torch.rand(2, 1, 64, 64) > 0.5).float()
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    (grad,) = torch.autograd.grad(lambda_beta_loss(logits, x, mu, logvar, 1.0, 4.0).loss, logits)
    s = torch.sigmoid(logits).detach()
    expected = (s - x) / 2 + 4.0 * 2 * (s - x) * s * (1 - s) / 2
    torch.testing.assert_close(grad, expected)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = VAE(3, latent_dim=5).to(memory_format=torch.channels_last)
    path = tmp_path / "sub" / "model.pt"
    save_model(path, model, {"beta": 8.0, "run_name": "x"})
    loaded, metadata = load_model(path)
    assert metadata == {"beta": 8.0, "run_name": "x"}
    assert (loaded.in_channels, loaded.latent_dim) == (3, 5)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left behind


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        load_model(tmp_path / "missing.pt")
    torch.save({"state_dict": {}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a saved VAE"):
        load_model(tmp_path / "bad.pt")
