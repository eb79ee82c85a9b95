"""Trains the feature classifier that `ebm_jax.eval.sample_quality` scores with, and writes its
weights into the package (`ebm_jax/eval/weights/<dataset>.npz`).

    python experiments/train_feature_classifier.py --dataset mnist --data-dir ../shared/data/mnist
    python experiments/train_feature_classifier.py --dataset fashion_mnist --data-dir ../shared/data/fashion_mnist

`ebm_jax.eval.classifier.FeatureClassifier` (four 3x3 convolutions, 32 / 64 / 64 / 64 channels,
the last three of stride 2, flattened into a 128-unit feature layer, 10 logits), Adam 1e-3, batch 128, `--epochs` epochs over the whole
training split with seed 0 (init and batch order), images in [-1, 1] with no augmentation.
Prints and stores the test accuracy with the weights.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_jax import data as data_lib
from ebm_jax.data.batching import epoch_permutation
from ebm_jax.eval import classifier


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=classifier.DATASETS, default="mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    dataset = data_lib.load(args.dataset, args.data_dir)
    x_train, y_train = data_lib.to_float_images(dataset.train.images), dataset.train.labels.astype(np.int32)
    x_test, y_test = data_lib.to_float_images(dataset.test.images), dataset.test.labels.astype(np.int32)
    model = classifier.FeatureClassifier()
    variables = model.init(jax.random.key(args.seed), x_train[:1])
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(variables)

    @jax.jit
    def step(variables, opt_state, x, y):
        def loss_fn(v):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(v, x)[1], y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(variables)
        updates, opt_state = optimizer.update(grads, opt_state, variables)
        return optax.apply_updates(variables, updates), opt_state, loss

    batch_size = 128
    for epoch in range(args.epochs):
        order = epoch_permutation(len(x_train), args.seed, epoch)
        for i in range(len(x_train) // batch_size):
            index = order[i * batch_size:(i + 1) * batch_size]
            variables, opt_state, loss = step(variables, opt_state, x_train[index], y_train[index])
        print(f"epoch {epoch + 1}: loss {float(loss):.4f}", flush=True)
    predict = jax.jit(lambda x: jnp.argmax(model.apply(variables, x)[1], -1))
    predictions = np.concatenate([np.asarray(predict(jnp.asarray(batch)))[valid]
                                  for batch, valid in data_lib.padded_batches(x_test, 1000)])
    accuracy = float(np.mean(predictions == y_test))
    info = {"architecture": classifier.FeatureClassifier.__doc__.strip(), "dataset": args.dataset,
            "training_data": dataset.source, "train_images": len(x_train), "epochs": args.epochs, "seed": args.seed,
            "optimizer": "Adam 1e-3, batch 128", "test_accuracy": accuracy, "test_images": len(x_test)}
    classifier.save(classifier.weights_path(args.dataset), variables, info)
    print(f"test accuracy {accuracy:.4f} on {len(x_test)} images; weights in {classifier.weights_path(args.dataset)}")


if __name__ == "__main__":
    main()
