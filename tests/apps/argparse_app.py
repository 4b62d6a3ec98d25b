"""A minimal argparse script: dumps the option values it received as JSON to $HSM_TEST_OUT."""

from __future__ import annotations

import argparse
import json
import os

N_VALUES = 64


def main() -> None:
    """Parse the options (all plain strings) and write them out."""
    parser = argparse.ArgumentParser()
    for name in ("a", "b", "model.hidden_dim", "lr", "tag", *(f"v{i}" for i in range(N_VALUES))):
        parser.add_argument(f"--{name}", type=str)
    args = parser.parse_args()
    given = {key: value for key, value in vars(args).items() if value is not None}
    with open(os.environ["HSM_TEST_OUT"], "w", encoding="utf-8") as out:
        json.dump(given, out)


if __name__ == "__main__":
    main()
