"""The 2-D objectives benchmark: `python -m ebm_jax.experiments.toy2d --objective ... --dataset ...`.

Its pieces, for notebooks: `build_objective(config, train_data)`, `train(config, objective,
train_data, workdir)` (on `ebm_jax.train.fit`), `evaluate(...)`, and `train_and_evaluate`.
"""

from ebm_jax.experiments.toy2d.config import Config, get_config
from ebm_jax.experiments.toy2d.run import build_objective, evaluate, train, train_and_evaluate

__all__ = ["Config", "build_objective", "evaluate", "get_config", "train", "train_and_evaluate"]
