"""Choosing a tf.distribute strategy by name."""

import logging
import os

import tensorflow as tf

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
log = logging.getLogger(__name__)


def split_cpu(replicas):
    """Splits the first CPU into ``replicas`` logical devices (before TensorFlow initialises them)."""
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as exc:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != replicas:
            raise RuntimeError(f"cannot split the CPU into {replicas} devices: TensorFlow already initialised "
                               f"{existing}; pass --cpu_replicas before anything runs") from exc


def make_strategy(name="default", cpu_replicas=0, worker_timeout=600.0):
    """Returns the strategy called ``name``.

    Args:
        name: one of ``STRATEGIES``. ``mirrored`` uses all GPUs, or with
            ``cpu_replicas`` > 1 that many logical CPU devices (so multi-replica
            training can be tested on a laptop). ``multi_worker`` reads
            ``TF_CONFIG``. ``tpu`` resolves the TPU from the environment.
        cpu_replicas: number of logical CPU devices for ``mirrored``;
            ignored, with a warning, by the other strategies.
        worker_timeout: ``multi_worker``: seconds to wait for the other
            workers to come up (see :mod:`electra_tf.training.cluster`).

    Raises:
        ValueError: a bad name or count, a malformed ``TF_CONFIG``, a worker
            that never came up, or no TPU (one-line messages).
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if cpu_replicas is None or cpu_replicas < 0:
        raise ValueError(f"--cpu_replicas must be >= 0, got {cpu_replicas}")
    if cpu_replicas and name != "mirrored":
        log.warning("--cpu_replicas %d is ignored: it only applies to --strategy mirrored (got --strategy %s)",
                    cpu_replicas, name)
    elif cpu_replicas > 1:
        split_cpu(cpu_replicas)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multi_worker":
        from electra_tf.training.cluster import parse_tf_config, wait_for_workers

        if worker_timeout is None or worker_timeout <= 0:
            raise ValueError(f"--worker_timeout must be > 0 seconds, got {worker_timeout}")
        wait_for_workers(parse_tf_config(os.environ.get("TF_CONFIG", "")), timeout=worker_timeout)
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"--strategy tpu: no TPU could be reached ({reason}); on a Cloud TPU VM or with "
                         f"TPU_NAME set it is found automatically; without a TPU use --strategy default, "
                         f"one_device or mirrored") from None


def is_chief(strategy):
    """Whether this process writes checkpoints, summaries, metrics and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


def worker_info(strategy):
    """``(num_workers, worker_index)`` of this process (1, 0 outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1, 0
    spec = resolver.cluster_spec().as_dict()
    workers = len(spec.get("worker", [])) + len(spec.get("chief", []))
    index = resolver.task_id + (1 if resolver.task_type == "worker" and "chief" in spec else 0)
    return max(1, workers), index
