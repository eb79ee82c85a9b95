"""The 2-D objectives benchmark: `python -m ebm_jax.experiments.toy2d --objective ... --dataset ...`."""
