"""Thin experiment drivers: `python -m ebm_jax.experiments.<name>`."""
