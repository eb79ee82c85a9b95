"""MCMC diagnostics: acceptance, multi-chain effective sample size, split R-hat, trace plots,
and a report of all of them from chains' energy traces (`energy_chain_report`).

Host-side (numpy) functions on collected draws `[num_chains, num_draws, ...]`; every trailing
dimension is treated as a separate scalar quantity. ESS and R-hat follow Gelman et al.,
"Bayesian Data Analysis" (3rd ed., ch. 11) and Stan's reference manual: autocorrelations
combined across chains through the between/within variance estimate, summed with Geyer's
initial monotone positive sequence.
"""

from typing import Optional, Sequence

import numpy as np


def acceptance_rate(infos) -> float:
    """Mean of `infos.acceptance_rate` over everything (steps and chains)."""
    return float(np.mean(np.asarray(infos.acceptance_rate)))


def effective_sample_size(draws) -> np.ndarray:
    """Multi-chain ESS of each quantity; `draws` `[chains, draws, ...]` -> `[...]`."""
    x = _as_chains(draws)
    m, n = x.shape[:2]
    if n < 4:
        raise ValueError(f"need at least 4 draws per chain, got {n}")
    centered = x - x.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(centered, n=size, axis=1)
    autocov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n] / n  # biased, per chain
    within = np.mean(autocov[:, 0] * n / (n - 1), axis=0)  # W
    chain_means = x.mean(axis=1)
    between_over_n = chain_means.var(axis=0, ddof=1) if m > 1 else np.zeros_like(within)  # B / n
    var_plus = within * (n - 1) / n + between_over_n
    rho = 1.0 - (within - autocov.mean(axis=0)) / var_plus  # [n, ...]
    rho[0] = 1.0
    # Geyer: sum pairs (rho_{2k} + rho_{2k+1}) while positive, forced monotone non-increasing.
    num_pairs = n // 2
    pairs = rho[: 2 * num_pairs].reshape(num_pairs, 2, *rho.shape[1:]).sum(axis=1)
    positive = np.cumprod(pairs > 0, axis=0).astype(bool)
    pairs = np.minimum.accumulate(np.where(positive, pairs, 0.0), axis=0)
    tau = -1.0 + 2.0 * pairs.sum(axis=0)
    tau = np.maximum(tau, 1.0 / np.log10(m * n))  # Stan's cap on antithetic chains
    return m * n / tau


def split_rhat(draws) -> np.ndarray:
    """Split R-hat of each quantity: each chain halved, then the potential scale reduction
    sqrt(var_plus / W). Close to 1 when the chains agree."""
    x = _as_chains(draws)
    half = x.shape[1] // 2
    if half < 2:
        raise ValueError("need at least 4 draws per chain")
    x = np.concatenate([x[:, :half], x[:, -half:]], axis=0)
    n = x.shape[1]
    within = x.var(axis=1, ddof=1).mean(axis=0)
    between_over_n = x.mean(axis=1).var(axis=0, ddof=1)
    var_plus = within * (n - 1) / n + between_over_n
    return np.sqrt(var_plus / within)


def monte_carlo_standard_error(draws) -> np.ndarray:
    """Standard error of the mean of each quantity: sd / sqrt(ESS)."""
    x = _as_chains(draws)
    return x.reshape(-1, *x.shape[2:]).std(axis=0, ddof=1) / np.sqrt(effective_sample_size(x))


def energy_chain_report(energies, infos=None, keep: float = 0.5) -> dict:
    """Diagnostics of chains from their energy traces `[chains, steps]`: split R-hat, ESS and the
    MCSE of the mean energy over the last `keep` share of the steps (the start from noise is a
    transient, not a stationary stretch), and the mean acceptance over all steps when `infos`
    has `acceptance_rate` (MALA, HMC). A JSON-able dict."""
    x = _as_chains(energies)
    if x.ndim != 2 or x.shape[1] < 8 or not 0 < keep <= 1:
        raise ValueError(f"energies must be [chains, steps >= 8] and keep in (0, 1], got {x.shape}, {keep}")
    tail = x[:, x.shape[1] - max(4, int(round(keep * x.shape[1]))):]
    report = {"chains": int(x.shape[0]), "steps": int(x.shape[1]), "steps_used": int(tail.shape[1]),
              "split_rhat": float(split_rhat(tail)), "ess": float(effective_sample_size(tail)),
              "mean_energy": float(tail.mean()), "mcse_mean_energy": float(monte_carlo_standard_error(tail))}
    if infos is not None and hasattr(infos, "acceptance_rate"):
        report["acceptance_rate"] = acceptance_rate(infos)
    return report


def plot_traces(path: str, traces, labels: Optional[Sequence[str]] = None, title: str = "",
                ylabel: str = "energy", xlabel: str = "draw") -> None:
    """Saves a trace plot: `traces` `[chains, draws]` (one line per chain, up to 8 drawn)."""
    from matplotlib.figure import Figure

    traces = np.asarray(traces)
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    for i, trace in enumerate(traces[:8]):
        ax.plot(trace, lw=0.7, label=labels[i] if labels else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if labels:
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def _as_chains(draws) -> np.ndarray:
    x = np.asarray(draws, np.float64)
    if x.ndim < 2:
        raise ValueError(f"draws must be [chains, draws, ...], got shape {x.shape}")
    return x
