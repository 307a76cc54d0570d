"""One worker of a two-process MultiWorkerMirroredStrategy test run (started by tests/test_reliability.py).

Usage: multi_worker_run.py TASK_INDEX PORT0 PORT1 DATA_DIR MODEL_DIR OUT_NPZ
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    index, port0, port1, data_dir, model_dir, out = sys.argv[1:7]
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
        "task": {"type": "worker", "index": int(index)},
    })
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from electra_tf.training.strategy import make_strategy

    strategy = make_strategy("multi_worker")
    import numpy as np
    from conftest import make_config

    from electra_tf.export import export_models
    from electra_tf.training.trainer import Trainer

    cfg = make_config(data_dir, "train.max_steps=3", "train.checkpoint_every=3", "train.eval_every=3")
    trainer = Trainer(cfg, model_dir, strategy, progress=False, export=export_models)
    trainer.train()
    variables = trainer.generator.weights + trainer.discriminator.weights
    np.savez(out, **{f"{i}": v.numpy() for i, v in enumerate(variables)})


if __name__ == "__main__":
    main()
