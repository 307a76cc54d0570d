"""electra_tf: ELECTRA-style pretraining with decoupled generator/discriminator optimizers."""

from setuptools import find_packages, setup

setup(
    name="electra_tf",
    version="0.1.0",
    description=(
        "ELECTRA-style pretraining in TensorFlow 2 + Keras 3 with DecoupledOptim "
        "(separate generator and discriminator optimizers)."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["electra_tf", "electra_tf.*"]),
    install_requires=[
        "tensorflow~=2.20.0",
        "tensorflow-text~=2.20.0",
        "keras>=3.10,<4",
        "sentencepiece>=0.1.99",
        "tensorflow-datasets>=4.9",
        # TFDS's download_and_prepare imports it (etils' resource utilities); TFDS does not declare it.
        "importlib_resources>=5",
        # TensorBoard's Profile tab for --profile_steps traces (2.23+ needs absl-py 2, which Model Garden refuses).
        "tensorboard-plugin-profile>=2.19,<2.23",
        "pyyaml>=6.0",
        "numpy>=1.26",
        "tqdm>=4.66",
        "psutil>=5.9",
        # scripts/convert_checkpoint.py --from hf / --to hf: Hugging Face's weight files, read and written without torch.
        "safetensors>=0.4",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "tf-models-official~=2.20.0",
            "matplotlib>=3.8",
            "scipy>=1.11",
            "scikit-learn>=1.3",
            "ruff>=0.5",
        ],
        # scripts/build_pretraining_data.py --runner R (Dataflow, Flink, Spark, DirectRunner).
        "beam": [
            "apache-beam>=2.60",
        ],
        # The libraries tests/test_convert_hf.py checks our conversions against (skipped without them); keras-hub is
        # also what --to keras_hub writes with. torch is pinned: an unpinned torch pulls a multi-GB CUDA build.
        # keras-hub 0.30+ pins kagglesdk==0.1.28, which Model Garden's kaggle (>=0.1.38) refuses: 0.29 keeps
        # pip check clean, and does not move tensorflow, keras or tensorflow-text.
        "oracles": [
            "torch==2.13.0",
            "transformers>=4.45",
            "keras-hub>=0.29,<0.30",
        ],
    },
    license="Apache-2.0",
)
