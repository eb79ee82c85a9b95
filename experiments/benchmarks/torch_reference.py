"""The UvA tutorial's training loop in eager PyTorch, as its users run it (our own code).

Used only by the benchmarks and the cross-check; PyTorch is the optional `bench` extra, never a
dependency of ebm_jax. Differences from the tutorial's notebook are deliberate and neutral:
the replay buffer is a preallocated tensor instead of a Python list, and everything is a
function or a small class so the benchmark can time pieces.

Layout: NCHW images `[B, 1, 28, 28]` in [-1, 1]. The CNN returns -E (the tutorial's "score").
`Trainer(device=...)` puts the model, the buffer and every draw on that device ("cpu", "cuda").
`Trainer(compiled=True, compile_mode=...)`: the same step with `torch.compile` (the best a
PyTorch user has without writing kernels; "reduce-overhead" adds CUDA graphs): one Langevin step (noise, input gradient by `torch.func.grad`, clip,
update) and the loss's forward and backward are compiled; the 60-step loop stays in Python.
"""

import torch
from torch import nn


class TutorialCNN(nn.Module):
    """Conv 5x5 s2 p4 -> c/2, three Conv 3x3 s2 p1 (c, 2c, 2c), Dense 2c, Dense 1, Swish between."""

    def __init__(self, features: int = 32):
        super().__init__()
        c = features
        self.net = nn.Sequential(
            nn.Conv2d(1, c // 2, 5, stride=2, padding=4), nn.SiLU(),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), nn.SiLU(),
            nn.Flatten(),
            nn.Linear(2 * c * 4, 2 * c), nn.SiLU(),
            nn.Linear(2 * c, 1),
        )

    def forward(self, x):  # -> score = -E, [B]
        return self.net(x).squeeze(-1)


def langevin(model, x, steps=60, step_size=10.0, noise=0.005, grad_clip=0.03, add_noise=True):
    """The tutorial's sampler loop; parameters are frozen during sampling."""
    was_training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = x.detach().clone().requires_grad_(True)
    for _ in range(steps):
        if add_noise:
            x.data.add_(torch.randn_like(x) * noise).clamp_(-1.0, 1.0)
        energy = -model(x)
        energy.sum().backward()
        x.grad.data.clamp_(-grad_clip, grad_clip)
        x.data.add_(-step_size * x.grad.data).clamp_(-1.0, 1.0)
        x.grad.zero_()
    for p in model.parameters():
        p.requires_grad_(True)
    model.train(was_training)
    return x.detach()


def compiled_langevin(model, mode="default"):
    """`langevin(x, steps, ...)` with each step one `torch.compile(..., mode=mode)`d function of
    the frozen model."""

    def energy_sum(x):
        return -model(x).sum()

    def one_step(x, noise, step_size: float, grad_clip: float):
        x = (x + noise).clamp(-1.0, 1.0)
        grad = torch.func.grad(energy_sum)(x)
        return (x - step_size * grad.clamp(-grad_clip, grad_clip)).clamp(-1.0, 1.0)

    step = torch.compile(one_step, mode=mode)

    def langevin_compiled(x, steps=60, step_size=10.0, noise=0.005, grad_clip=0.03, add_noise=True):
        was_training = model.training
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        x = x.detach()
        for _ in range(steps):
            x = step(x, torch.randn_like(x) * noise if add_noise else torch.zeros_like(x), step_size, grad_clip)
        for p in model.parameters():
            p.requires_grad_(True)
        model.train(was_training)
        return x

    return langevin_compiled


class Trainer:
    """One tutorial training step at a time: buffer sample, 60 Langevin steps, CD + L2, Adam."""

    def __init__(self, batch_size=128, capacity=8192, lr=1e-4, alpha=0.1, seed=0, features=32, device="cpu",
                 compiled=False, compile_mode="default"):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.model = TutorialCNN(features).to(self.device)
        self.sampler = (compiled_langevin(self.model, compile_mode) if compiled else
                        (lambda x, steps: langevin(self.model, x, steps)))
        self.forward = torch.compile(self.model, mode=compile_mode) if compiled else self.model
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, betas=(0.0, 0.999))
        self.buffer = torch.rand(capacity, 1, 28, 28, device=self.device) * 2 - 1
        self.size, self.cursor = batch_size, batch_size
        self.batch_size, self.alpha = batch_size, alpha

    def sample_negatives(self, steps=60):
        n, device = self.batch_size, self.device
        fresh = torch.rand(n, device=device) < 0.05  # Binomial(n, 0.05) fresh rows
        starts = self.buffer[torch.randint(0, self.size, (n,), device=device)]
        starts[fresh] = torch.rand(int(fresh.sum()), 1, 28, 28, device=device) * 2 - 1
        fake = self.sampler(starts, steps)
        slots = (self.cursor + torch.arange(n, device=device)) % self.buffer.shape[0]
        self.buffer[slots] = fake
        self.cursor = int((self.cursor + n) % self.buffer.shape[0])
        self.size = min(self.size + n, self.buffer.shape[0])
        return fake

    def step(self, real, steps=60):
        real = (real + 0.005 * torch.randn_like(real)).clamp(-1.0, 1.0)
        fake = self.sample_negatives(steps)
        real_out, fake_out = self.forward(torch.cat([real, fake])).chunk(2)
        loss = self.alpha * (real_out**2 + fake_out**2).mean() + fake_out.mean() - real_out.mean()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.1)
        self.optimizer.step()
        return float(loss)
