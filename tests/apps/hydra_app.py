"""A minimal Hydra app: dumps the config it received as JSON to $HSM_TEST_OUT (or the task dir).

Every key exists with a null default, because a sweep passes plain `name=value` overrides and
Hydra refuses those for keys its config does not have.
"""

from __future__ import annotations

import json
import os

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

N_VALUES = 64

ConfigStore.instance().store(
    name="hsm_test_app",
    node={"a": None, "b": None, "model": {"hidden_dim": None}, **{f"v{i}": None for i in range(N_VALUES)}},
)


@hydra.main(version_base=None, config_path=None, config_name="hsm_test_app")
def main(cfg: DictConfig) -> None:
    """Write what the script would read from `cfg`: interpolations resolved, missing values an error."""
    # resolve=True is what `cfg.a` gives the training code; the raw form would hide an
    # interpolation that OmegaConf performs on access.
    values = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    with open(_out_path(), "w", encoding="utf-8") as out:
        # repr keeps what JSON loses: int vs str dict keys, nan.
        json.dump({"values": values, "repr": {key: repr(value) for key, value in values.items()}}, out)


def _out_path() -> str:
    """$HSM_TEST_OUT, or received.json in the task dir when hsm runs the app."""
    return os.environ.get("HSM_TEST_OUT") or os.path.join(os.environ["HSM_TASK_DIR"], "received.json")


if __name__ == "__main__":
    main()
