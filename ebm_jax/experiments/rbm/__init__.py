"""RBMs on binarized MNIST: `python -m ebm_jax.experiments.rbm --objective cd1|cd25|pcd|pt`.

Its pieces, for notebooks: `load_binarized(config)`, `build_objective(config)`,
`train_rbm(config, data, workdir)` (on `ebm_jax.train.fit`), `evaluate(...)`, `train_dbn(...)`
and `train_and_evaluate`.
"""

from ebm_jax.experiments.rbm.config import Config, get_config
from ebm_jax.experiments.rbm.run import build_objective, evaluate, load_binarized, train_and_evaluate, train_dbn, train_rbm

__all__ = ["Config", "build_objective", "evaluate", "get_config", "load_binarized", "train_and_evaluate", "train_dbn",
           "train_rbm"]
