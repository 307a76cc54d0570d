"""Moving models between electra_tf and other ELECTRA formats.

* google-research/electra's TensorFlow 1 checkpoints, both ways
  (:mod:`electra_tf.convert.electra_tf1`);
* Hugging Face transformers' ELECTRA dirs in safetensors, both ways
  (:mod:`electra_tf.convert.hf`);
* keras-hub ``ElectraBackbone`` presets, out only
  (:mod:`electra_tf.convert.keras_hub`).

What they share (output dirs written whole or not at all, model dirs,
refusals by name) is :mod:`electra_tf.convert.common`.
``scripts/convert_checkpoint.py`` is the command line.

Example:

>>> import_electra_tf1("electra_small", "models/electra_small")          # doctest: +SKIP
>>> import_hf("electra-small-discriminator", "models/electra_small",
...           generator_dir="electra-small-generator")                    # doctest: +SKIP
>>> export_hf("runs/domain", "electra_small_domain_hf")                    # doctest: +SKIP
>>> export_keras_hub("runs/domain", "electra_small_domain_keras_hub")     # doctest: +SKIP
"""

from electra_tf.convert.common import ConversionError
from electra_tf.convert.electra_tf1 import (
    Tf1Architecture,
    export_electra_tf1,
    import_electra_tf1,
    read_tf1_checkpoint,
    tf1_variable_map,
)
from electra_tf.convert.hf import export_hf, hf_name, import_hf
from electra_tf.convert.keras_hub import export_keras_hub

__all__ = ["ConversionError", "Tf1Architecture", "import_electra_tf1", "export_electra_tf1", "read_tf1_checkpoint",
           "tf1_variable_map", "import_hf", "export_hf", "hf_name", "export_keras_hub"]
