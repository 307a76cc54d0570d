"""Moving models between electra_tf and other ELECTRA formats.

Today: google-research/electra's TensorFlow 1 checkpoints, both ways
(:mod:`electra_tf.convert.electra_tf1`). ``scripts/convert_checkpoint.py`` is
the command line.

Example:

>>> import_electra_tf1("electra_small", "models/electra_small")          # doctest: +SKIP
>>> export_electra_tf1("runs/domain", "electra_small_domain")             # doctest: +SKIP
"""

from electra_tf.convert.electra_tf1 import (
    ConversionError,
    Tf1Architecture,
    export_electra_tf1,
    import_electra_tf1,
    read_tf1_checkpoint,
    tf1_variable_map,
)

__all__ = ["ConversionError", "Tf1Architecture", "import_electra_tf1", "export_electra_tf1", "read_tf1_checkpoint",
           "tf1_variable_map"]
