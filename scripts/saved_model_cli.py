#!/usr/bin/env python
"""TensorFlow's saved_model_cli with the tensorflow-text ops registered.

The exported SavedModels contain the SentencePiece op of their text signatures,
which plain ``saved_model_cli run`` cannot load ("Op type not registered
'SentencepieceOp'"); ``show`` works either way. Same arguments as saved_model_cli:

    python scripts/saved_model_cli.py run --dir runs/tiny/export/discriminator --tag_set serve \
        --signature_def detect_text --input_exprs 'sentences=["The cat sat on the mat."]'
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow_text  # noqa: E402,F401  (registers the SentencePiece op)
from tensorflow.python.tools.saved_model_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.argv[0] = "saved_model_cli"
    sys.exit(main())
