"""Writing a TFRecord data dir on Apache Beam (Dataflow, Flink, Spark or the DirectRunner).

:func:`write_pretraining_data_beam` makes the same data dir as the local
builder (:func:`electra_tf.data.writer.write_pretraining_data`): on the same
inputs, vocabulary, seed and ``examples_per_shard`` its shards are
byte-identical. The local builder's rules carry over because the pipeline
reproduces its units of work:

1. *Read*: each source is read by one worker (documents respected), giving
   ``(source, index, document)``.
2. *Plan*: the documents' text sizes (packed per source, 8 bytes each) are
   gathered on one worker, which cuts the global document order into the local builder's
   chunks of ``chunk_bytes`` (a list of each chunk's first document).
3. *Encode*: documents are grouped by chunk and each chunk is tokenized and
   packed by :func:`electra_tf.data.packing.encode_chunk`, so the short-length
   draws are keyed by ``(seed, chunk)`` and eval documents (chosen by global
   document index) go whole to the eval split, exactly as locally.
4. *Place*: the per-chunk counts give each sequence its position in its split
   (chunk order), hence its shard; each shard is written by one worker as
   ``*.tfrecord.partial`` and renamed when closed.
5. *Manifest*: once every shard is written (a side input that is complete only
   then), ``manifest.json`` is written, last.

Nothing is visible half-written: on a local output the pipeline writes into
the local builder's hidden staging dir (``.NAME.partial-PID``), renamed to the
output dir by the launcher after the pipeline succeeded. On a remote
filesystem (``gs://...``) the shards go straight into the output dir, an old
manifest is deleted first, and the manifest written last marks it complete.

Example:

>>> manifest = write_pretraining_data_beam(["corpus.txt"], "vocab.model", "tfrecords/mydata", 128,
...                                        pipeline_args=["--runner", "DirectRunner"])
"""

from __future__ import annotations

import array
import bisect
import hashlib
import json
import logging
import shutil
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from electra_tf.data import packing
from electra_tf.data.corpus import check_sources, iter_documents
from electra_tf.data.manifest import MANIFEST, VOCAB_MODEL, DataError, shard_name
from electra_tf.data.vocab import file_sha256, load_sentencepiece
from electra_tf.data.writer import (
    SPLITS,
    _check_args,
    _check_output_dir,
    _publish,
    _stage_dir,
    build_manifest,
    check_examples,
)

__all__ = ["write_pretraining_data_beam"]

logger = logging.getLogger(__name__)

_PARTIAL = ".partial"


def _is_remote(path: str) -> bool:
    return "://" in path


# ---------------------------------------------------------------- pipeline steps (module level: picklable)
def _read_source(item: Tuple[int, str]) -> Iterator[Tuple[int, int, List[str]]]:
    index, source = item
    for number, doc in enumerate(iter_documents(source)):
        yield index, number, doc


def _doc_size(doc: Sequence[str]) -> int:
    """The text size the local builder's chunking counts (characters, one per line end and one per document)."""
    return sum(len(line) + 1 for line in doc) + 1


def _source_sizes(item: Tuple[int, Sequence[Tuple[int, int]]]) -> Tuple[int, array.array]:
    """One source's document sizes in document order, packed (8 bytes a document)."""
    source, sizes = item
    packed = array.array("q", [0]) * len(sizes)
    for number, size in sizes:
        packed[number] = size
    return source, packed


def _plan(per_source: List[Tuple[int, array.array]], chunk_bytes: int) -> Dict[str, Any]:
    """Cuts the global document order into chunks, as :func:`electra_tf.data.writer._chunks` does.

    Returns:
        ``{"offsets": {source: global index of its first document}, "chunk_first": [first document of each chunk]}``.
    """
    offsets: Dict[int, int] = {}
    chunk_first, size, g = [0], 0, 0
    for source, sizes in sorted(per_source, key=lambda s: s[0]):
        offsets[source] = g
        for doc_size in sizes:
            size += doc_size
            g += 1
            if size >= chunk_bytes:
                chunk_first.append(g)
                size = 0
    if len(chunk_first) > 1 and chunk_first[-1] == g:
        chunk_first.pop()  # the last chunk closed exactly at the end
    return {"offsets": offsets, "chunk_first": chunk_first}


def _key_by_chunk(doc: Tuple[int, int, List[str]], plan: Dict[str, Any]) -> Tuple[int, Tuple[int, List[str]]]:
    source, number, lines = doc
    g = plan["offsets"][source] + number
    return bisect.bisect_right(plan["chunk_first"], g) - 1, (g, lines)


# SentencePiece models loaded in this worker process, by the sha256 of their bytes.
_processors: Dict[str, Any] = {}


def _processor_for(model_proto: bytes, digest: str):
    """This build's SentencePiece model, loaded once per worker process.

    Keyed by the model's own hash, never the process-wide model of :func:`packing.init_worker`: on the
    DirectRunner the steps run in the launcher's process, where an earlier in-process build (``workers=1``,
    e.g. the built-in data) may have loaded another vocabulary.
    """
    processor = _processors.get(digest)
    if processor is None:
        import sentencepiece as spm

        processor = _processors[digest] = spm.SentencePieceProcessor(model_proto=model_proto)
    return processor


class _EncodeChunk:
    """Tokenizes and packs one chunk (a DoFn's body; the SentencePiece model loads once per worker)."""

    def __init__(self, model_proto: bytes, params: Tuple[int, float, float, int]):
        # The model's bytes travel with the step: workers need not see the launcher's files.
        self.model_proto, self.params = model_proto, params
        self.digest = hashlib.sha256(model_proto).hexdigest()

    def __call__(self, item: Tuple[int, Sequence[Tuple[int, List[str]]]]) -> Tuple[int, Dict[str, Any]]:
        chunk, docs = item
        docs = sorted(docs, key=lambda d: d[0])
        return chunk, packing.encode_chunk((chunk, docs[0][0], [d[1] for d in docs], *self.params),
                                           processor=_processor_for(self.model_proto, self.digest))


def _layout(counts: List[Tuple[int, Dict[str, int], Dict[str, Dict[str, int]]]]) -> Dict[str, Any]:
    """Each chunk's first position in each split, the split sizes and the summed statistics."""
    starts: Dict[str, Dict[int, int]] = {split: {} for split in SPLITS}
    totals = {split: 0 for split in SPLITS}
    stats = {split: {"documents": 0, "tokens": 0, "text_bytes": 0} for split in SPLITS}
    for chunk, sizes, chunk_stats in sorted(counts, key=lambda c: c[0]):
        for split in SPLITS:
            starts[split][chunk] = totals[split]
            totals[split] += sizes[split]
            for key, value in chunk_stats[split].items():
                stats[split][key] += value
    return {"starts": starts, "totals": totals, "stats": stats}


def _place(item: Tuple[int, Dict[str, Any]], layout: Dict[str, Any], per_shard: int):
    chunk, result = item
    for split in SPLITS:
        start = layout["starts"][split][chunk]
        for offset, record in enumerate(result[split]):
            position = start + offset
            yield (split, position // per_shard), (position, record)


def _gfile_sha256(path: str) -> str:
    import tensorflow as tf

    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_shard(item, directory: str, layout: Dict[str, Any], per_shard: int) -> Dict[str, Any]:
    """Writes one shard's records in position order; returns its manifest entry."""
    import tensorflow as tf

    (split, index), records = item
    count = -(-layout["totals"][split] // per_shard)
    name = shard_name(split, index, count)
    path = f"{directory}/{name}"
    records = sorted(records, key=lambda r: r[0])
    with tf.io.TFRecordWriter(path + _PARTIAL) as writer:
        for _, record in records:
            writer.write(record)
    tf.io.gfile.rename(path + _PARTIAL, path, overwrite=True)
    return {"split": split, "index": index, "file": name, "examples": len(records),
            "bytes": tf.io.gfile.stat(path).length, "sha256": _gfile_sha256(path)}


def _write_manifest(written: List[Dict[str, Any]], layout: Dict[str, Any], directory: str,
                    settings: Dict[str, Any]) -> Dict[str, Any]:
    """Writes ``manifest.json`` (after every shard: ``written`` is complete only then)."""
    import tensorflow as tf

    shards = {split: [] for split in SPLITS}
    for entry in sorted(written, key=lambda e: (e["split"], e["index"])):
        shards[entry["split"]].append({k: entry[k] for k in ("file", "examples", "bytes", "sha256")})
    manifest = build_manifest(shards=shards, stats=layout["stats"], **settings)
    path = f"{directory}/{MANIFEST}"
    with tf.io.gfile.GFile(path + _PARTIAL, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tf.io.gfile.rename(path + _PARTIAL, path, overwrite=True)
    return manifest


# ---------------------------------------------------------------- the launcher
def _run_pipeline(sources: Sequence[str], model_proto: bytes, directory: str, settings: Dict[str, Any],
                  pipeline_args: Sequence[str]) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    params = (settings["max_seq_length"], settings["short_seq_prob"], settings["eval_fraction"], settings["seed"])
    per_shard = settings["examples_per_shard"]
    with beam.Pipeline(options=PipelineOptions(list(pipeline_args))) as p:
        docs = (p | "Sources" >> beam.Create(list(enumerate(sources)))
                | "Read" >> beam.FlatMap(_read_source))
        plan = (docs | "Sizes" >> beam.Map(lambda d: (d[0], (d[1], _doc_size(d[2]))))
                | "GroupSizes" >> beam.GroupByKey()
                | "PackSizes" >> beam.Map(_source_sizes)
                | "AllSizes" >> beam.combiners.ToList()
                | "Plan" >> beam.Map(_plan, settings["chunk_bytes"]))
        chunks = (docs | "KeyByChunk" >> beam.Map(_key_by_chunk, plan=beam.pvalue.AsSingleton(plan))
                  | "GroupChunks" >> beam.GroupByKey()
                  | "Encode" >> beam.Map(_EncodeChunk(model_proto, params)))
        layout = (chunks | "Counts" >> beam.Map(lambda c: (c[0], {s: len(c[1][s]) for s in SPLITS}, c[1]["stats"]))
                  | "AllCounts" >> beam.combiners.ToList()
                  | "Layout" >> beam.Map(_layout))
        written = (chunks | "Place" >> beam.FlatMap(_place, layout=beam.pvalue.AsSingleton(layout),
                                                    per_shard=per_shard)
                   | "GroupShards" >> beam.GroupByKey()
                   | "WriteShards" >> beam.Map(_write_shard, directory, beam.pvalue.AsSingleton(layout), per_shard))
        _ = (written | "AllShards" >> beam.combiners.ToList()
             | "Manifest" >> beam.Map(_write_manifest, beam.pvalue.AsSingleton(layout), directory, settings))


def write_pretraining_data_beam(
    inputs: Sequence[str],
    vocab_path: str,
    output_dir: str,
    max_seq_length: int,
    eval_fraction: float = 0.02,
    short_seq_prob: float = 0.1,
    seed: int = 0,
    examples_per_shard: int = 10_000,
    chunk_bytes: int = 256 * 1024,
    pipeline_args: Optional[Sequence[str]] = None,
) -> Dict[str, Any]:
    """Builds a data dir on an Apache Beam runner; the same files as the local builder.

    Args:
        inputs, vocab_path, output_dir, max_seq_length, eval_fraction, short_seq_prob, seed,
        examples_per_shard, chunk_bytes: as for :func:`electra_tf.data.writer.write_pretraining_data`.
        pipeline_args: Beam pipeline options, e.g. ``["--runner", "DirectRunner"]`` or
            ``["--runner", "DataflowRunner", "--project", "P", "--temp_location", "gs://..."]``.

    Returns:
        The manifest, as written to ``output_dir/manifest.json``.

    Raises:
        ValueError, electra_tf.data.corpus.CorpusError, DataError: the local builder's errors,
            for the same bad inputs.
        ImportError: apache-beam is not installed (``pip install "electra_tf[beam]"``).
    """
    _check_args(max_seq_length, 1, eval_fraction, short_seq_prob, examples_per_shard)
    if str(vocab_path).endswith(".txt"):
        raise ValueError(f"--runner builds with SentencePiece models only, got the WordPiece vocabulary {vocab_path}; "
                         "build WordPiece data with the local builder (leave out --runner)")
    sources = check_sources(inputs)
    sp = load_sentencepiece(vocab_path)
    try:
        import apache_beam  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"--runner needs Apache Beam ({exc}); install it with pip install -e \".[beam]\"") from None
    import tensorflow as tf

    remote = _is_remote(output_dir)
    if remote:
        stage = output_dir.rstrip("/")
        tf.io.gfile.makedirs(stage)
        if tf.io.gfile.exists(f"{stage}/{MANIFEST}"):
            tf.io.gfile.remove(f"{stage}/{MANIFEST}")  # the old build is incomplete from now on
    else:
        _check_output_dir(output_dir)
        stage = _stage_dir(output_dir)
    settings = dict(inputs=list(inputs), vocab_sha256=file_sha256(vocab_path), vocab_size=sp.get_piece_size(),
                    max_seq_length=max_seq_length, eval_fraction=eval_fraction, short_seq_prob=short_seq_prob,
                    seed=seed, examples_per_shard=examples_per_shard, chunk_bytes=chunk_bytes)
    start = time.time()
    try:
        tf.io.gfile.copy(vocab_path, f"{stage}/{VOCAB_MODEL}", overwrite=True)
        with open(vocab_path, "rb") as f:
            model_proto = f.read()
        _run_pipeline(sources, model_proto, stage, settings, pipeline_args or [])
        path = f"{stage}/{MANIFEST}"
        with tf.io.gfile.GFile(path) as f:
            manifest = json.load(f)
        try:
            check_examples(manifest["shards"], {s: {"documents": manifest["documents"][s]} for s in SPLITS},
                           sources, eval_fraction)
        except DataError:
            tf.io.gfile.remove(path)
            raise
        if not remote:
            _publish(stage, output_dir)
    except BaseException:
        if not remote:
            shutil.rmtree(stage, ignore_errors=True)
        raise
    seconds = time.time() - start
    text_mb = sum(manifest["text_bytes"].values()) / 1e6
    logger.info("Beam wrote %d train and %d eval sequences of %d to %s in %.1f s (%.2f MB of text/s)",
                manifest["examples"]["train"], manifest["examples"]["eval"], max_seq_length, output_dir, seconds,
                text_mb / max(seconds, 1e-9))
    return manifest
