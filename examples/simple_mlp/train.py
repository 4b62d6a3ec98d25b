"""A small real training script: a one-hidden-layer MLP on two interleaved moons.

Pure Python (no NumPy), so the example runs wherever hsm does. It reads its
hyperparameters as --name value options, trains with mini-batch SGD, and writes its
metrics to $HSM_TASK_DIR/metrics.json (or ./metrics.json when run by hand).
"""

import argparse
import json
import math
import os
import random
import time


def moons(n, noise, rng):
    """n points of two interleaved half circles, labelled 0 and 1."""
    data = []
    for i in range(n):
        t = math.pi * rng.random()
        if i % 2 == 0:
            x, y, label = math.cos(t), math.sin(t), 0
        else:
            x, y, label = 1 - math.cos(t), 0.5 - math.sin(t), 1
        data.append(((x + rng.gauss(0, noise), y + rng.gauss(0, noise)), label))
    return data


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--hidden_dim", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    train, test = moons(400, 0.15, rng), moons(200, 0.15, rng)
    h = args.hidden_dim
    w1 = [[rng.gauss(0, 1) for _ in range(2)] for _ in range(h)]
    b1 = [0.0] * h
    w2 = [rng.gauss(0, 1 / math.sqrt(h)) for _ in range(h)]
    b2 = 0.0

    def forward(x):
        hidden = [math.tanh(w[0] * x[0] + w[1] * x[1] + b) for w, b in zip(w1, b1)]
        z = sum(a * w for a, w in zip(hidden, w2)) + b2
        return hidden, 1 / (1 + math.exp(-max(min(z, 30), -30)))

    start = time.time()
    for epoch in range(args.epochs):
        rng.shuffle(train)
        loss = 0.0
        for i in range(0, len(train), args.batch_size):
            batch = train[i : i + args.batch_size]
            gw1 = [[0.0, 0.0] for _ in range(h)]
            gb1 = [0.0] * h
            gw2 = [0.0] * h
            gb2 = 0.0
            for x, y in batch:
                hidden, p = forward(x)
                loss -= math.log(p if y else 1 - p + 1e-12) if p > 0 else 0
                dz = p - y
                gb2 += dz
                for j in range(h):
                    gw2[j] += dz * hidden[j]
                    dh = dz * w2[j] * (1 - hidden[j] ** 2)
                    gw1[j][0] += dh * x[0]
                    gw1[j][1] += dh * x[1]
                    gb1[j] += dh
            step = args.learning_rate / len(batch)
            b2 -= step * gb2
            for j in range(h):
                w2[j] -= step * gw2[j]
                w1[j][0] -= step * gw1[j][0]
                w1[j][1] -= step * gw1[j][1]
                b1[j] -= step * gb1[j]
        print(f"epoch {epoch + 1}/{args.epochs} loss {loss / len(train):.4f}", flush=True)

    accuracy = sum((forward(x)[1] > 0.5) == bool(y) for x, y in test) / len(test)
    metrics = {"test_accuracy": accuracy, "train_loss": loss / len(train), "seconds": round(time.time() - start, 3)}
    print(json.dumps(metrics))
    out = os.path.join(os.environ.get("HSM_TASK_DIR", "."), "metrics.json")
    with open(out, "w") as fh:
        json.dump(metrics, fh)


if __name__ == "__main__":
    main()
