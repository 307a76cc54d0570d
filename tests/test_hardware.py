"""bf16 detection from /proc/cpuinfo, and the warning that bf16 training is emulated (slower) on a CPU without it."""

import logging

from electra_tf.training import builder, hardware
from tests.conftest import make_config

FLAGS = "flags\t\t: fpu vme sse2 avx2 fma avx512f avx512bw avx512_vnni {extra}\n"


def _cpuinfo(tmp_path, extra):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Some CPU\n" + FLAGS.format(extra=extra))
    return str(path)


def test_hardware_bf16_reads_the_cpu_flags(tmp_path):
    assert hardware.hardware_bf16(_cpuinfo(tmp_path, "avx512_bf16"), machine="x86_64") is True
    assert hardware.hardware_bf16(_cpuinfo(tmp_path, "amx_tile amx_bf16"), machine="x86_64") is True
    assert hardware.hardware_bf16(_cpuinfo(tmp_path, ""), machine="x86_64") is False
    # Unknown: no flags to read, or not x86 (no warning there).
    assert hardware.hardware_bf16(str(tmp_path / "missing"), machine="x86_64") is None
    assert hardware.hardware_bf16(_cpuinfo(tmp_path, ""), machine="aarch64") is None


def test_warning_only_for_bfloat16_on_a_cpu_that_emulates_it(monkeypatch, caplog):
    for detected, precision, warns in [(False, "bfloat16", True), (True, "bfloat16", False),
                                       (None, "bfloat16", False), (False, "none", False), (False, "float16", False)]:
        monkeypatch.setattr(hardware, "hardware_bf16", lambda detected=detected: detected)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=hardware.__name__):
            assert hardware.warn_if_bf16_emulated(precision) is warns
        assert ("slower" in caplog.text) is warns, (detected, precision)


def test_build_pretraining_warns_at_start(monkeypatch, caplog, tiny_data):
    calls = []
    monkeypatch.setattr(builder, "warn_if_bf16_emulated", calls.append)
    builder.build_pretraining(make_config(tiny_data, "train.mixed_precision=bfloat16"))
    assert calls == ["bfloat16"]
