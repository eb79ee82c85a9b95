"""Data helpers the image experiments share (mnist, jem)."""

import os

from ebm_jax import data as data_lib


def other_dataset(config):
    """`(name, test images [N, 28, 28, 1] or None, source or why not)` of the OOD benchmark's other
    dataset (Fashion-MNIST for MNIST and the reverse), as many images as the evaluated test split;
    `config` has `dataset`, `data_dir`, `ood_data_dir` and `max_eval_images`.
    From `ood_data_dir` when given; else, when `data_dir` is given, from the folder beside it
    named for the dataset if there is one (no search: a run given its data stays offline); else
    from the usual search (`data.load`)."""
    name = "fashion_mnist" if config.dataset == "mnist" else "mnist"
    folder = config.ood_data_dir
    if folder is None and config.data_dir is not None:
        folder = os.path.join(os.path.dirname(os.path.abspath(config.data_dir)), name)
        if not os.path.isdir(folder):
            print(f"note: the OOD benchmark runs without {name}: no folder {folder} (set --ood-data-dir)")
            return name, None, f"not found beside --data-dir ({folder})"
    try:
        dataset = data_lib.load(name, folder)
    except data_lib.DataNotFoundError as e:
        if config.ood_data_dir is not None:
            raise
        print(f"note: the OOD benchmark runs without {name}: {str(e).splitlines()[0]}")
        return name, None, f"not found: {str(e).splitlines()[0]}"
    images = data_lib.to_float_images(dataset.test.images)
    if config.max_eval_images is not None:
        images = images[: config.max_eval_images]
    return name, images, f"{dataset.source}, test split"
