"""A minimal argparse script: dumps the option values it received as JSON to $HSM_TEST_OUT (or the task dir)."""

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
    with open(_out_path(), "w", encoding="utf-8") as out:
        json.dump(given, out)


def _out_path() -> str:
    """$HSM_TEST_OUT, or received.json in the task dir when hsm runs the app."""
    return os.environ.get("HSM_TEST_OUT") or os.path.join(os.environ["HSM_TASK_DIR"], "received.json")


if __name__ == "__main__":
    main()
