import asyncio

import numpy as np
import pytest
import torch

from auralis_ray.config import GPUConfig
from auralis_ray.core_settings import batch_render_config
from auralis_ray.music.params import StationParams
from auralis_ray.synth.async_engine import AsyncSynthesisEngine
from auralis_ray.synth.device import DeviceInfo, describe_device, select_device
from auralis_ray.synth.engine import BatchRenderConfig, OptimizedSynthesisEngine

SR = 44100
ENGINE = batch_render_config(GPUConfig())  # the configuration's defaults


def _render(blocks, stations=(("a", "focus", 1),), block_frames=44100, gpu=GPUConfig()):
    e = OptimizedSynthesisEngine(batch_render_config(gpu), sample_rate=SR, block_frames=block_frames, device="cpu")
    for name, preset, seed in stations:
        e.add_station(name, StationParams.from_preset(preset), seed)
    out = {name: [] for name, _, _ in stations}
    for _ in range(blocks):
        for name, pcm in e.render_block().items():
            out[name].append(pcm)
    return e, {k: np.concatenate(v) for k, v in out.items() if v}


def test_block_format():
    e, _ = _render(0)
    blocks = e.render_block()
    pcm = blocks["a"]
    assert pcm.dtype == np.int16 and pcm.shape == (44100, 2) and pcm.flags["C_CONTIGUOUS"]
    assert e.render_count == 1 and e.stations() == ["a"]
    assert isinstance(e.device_info, DeviceInfo) and e.device_info.device_type == "cpu"


def test_same_seed_same_bytes_and_other_seed_differs():
    _, a = _render(4)
    _, b = _render(4)
    _, c = _render(4, stations=(("a", "focus", 2),))
    assert a["a"].tobytes() == b["a"].tobytes()
    assert a["a"].tobytes() != c["a"].tobytes()


def test_block_size_does_not_change_the_audio():
    """Seamless by construction: 100 ms blocks give the samples 1 s blocks give (up to float rounding)."""
    _, big = _render(6)
    _, small = _render(60, block_frames=4410)
    diff = np.abs(big["a"].astype(np.int32) - small["a"].astype(np.int32))
    assert diff.max() <= 2, diff.max()
    assert np.abs(big["a"]).max() > 1000


def test_station_in_a_batch_sounds_as_alone():
    _, alone = _render(3, stations=(("b", "sleep", 7),))
    _, batch = _render(3, stations=(("a", "focus", 1), ("b", "sleep", 7), ("c", "bright", 3)))
    assert np.abs(alone["b"].astype(np.int32) - batch["b"].astype(np.int32)).max() <= 2
    assert not np.array_equal(batch["a"], batch["c"])


def test_max_batch_size_groups_render_the_same():
    stations = tuple((f"s{i}", "focus", i) for i in range(5))
    _, one = _render(2, stations=stations, gpu=GPUConfig(max_batch_size=2))
    _, all_ = _render(2, stations=stations, gpu=GPUConfig(max_batch_size=16))
    for name in one:
        assert np.abs(one[name].astype(np.int32) - all_[name].astype(np.int32)).max() <= 2


def test_set_params_only_touches_that_station_and_add_remove():
    e = OptimizedSynthesisEngine(ENGINE, device="cpu")
    ref = OptimizedSynthesisEngine(ENGINE, device="cpu")
    for eng in (e, ref):
        eng.add_station("a", StationParams.from_preset("focus"), 1)
        eng.add_station("b", StationParams.from_preset("focus"), 2)
        eng.render_block()
    e.set_params("a", StationParams.from_preset("focus", key="F#", mode="phrygian"))
    a_changed = b_same = True
    for _ in range(20):
        x, y = e.render_block(), ref.render_block()
        b_same &= np.array_equal(x["b"], y["b"])
        a_changed &= np.array_equal(x["a"], y["a"])
    assert b_same and not a_changed
    e.remove_station("a")
    assert e.stations() == ["b"] and set(e.render_block()) == {"b"}
    with pytest.raises(KeyError):
        e.set_params("zz", StationParams())
    with pytest.raises(ValueError):
        e.add_station("b", StationParams(), 1)


def test_restart_with_start_frame_fades_in():
    e = OptimizedSynthesisEngine(ENGINE, device="cpu")
    e.add_station("a", StationParams.from_preset("bright"), 1, start_frame=44100 * 3600)
    pcm = np.concatenate([e.render_block()["a"] for _ in range(3)]).astype(np.float64)
    assert np.abs(pcm[:200]).max() == 0  # limiter look-ahead, then a 50 ms fade
    ramp = np.abs(pcm[:2205]).max()
    assert ramp < 32767 * 0.9
    e2 = OptimizedSynthesisEngine(ENGINE, device="cpu")
    e2.add_station("a", StationParams.from_preset("bright"), 1)
    assert not np.array_equal(e2.render_block()["a"], pcm[:44100].astype(np.int16))


def test_bad_block_frames_and_device():
    with pytest.raises(ValueError, match="block_frames"):
        OptimizedSynthesisEngine(ENGINE, block_frames=1000)
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            select_device("cuda")
    info = describe_device("cpu")
    assert info.device_type == "cpu" and info.compute_capability is None


def test_batch_render_config_is_built_from_the_gpu_section():
    gpu = GPUConfig(max_batch_size=8, enable_torch_compile=True, compile_mode="default", enable_cuda_streams=False,
                    device="cpu", target_lufs=-18.0, reverb_seconds=2.0)
    cfg = batch_render_config(gpu)
    assert isinstance(cfg, BatchRenderConfig)
    assert (cfg.max_batch_size, cfg.enable_torch_compile, cfg.compile_mode, cfg.use_cuda_streams) == (8, True, "default", False)
    assert (cfg.device, cfg.target_lufs, cfg.reverb_seconds) == ("cpu", -18.0, 2.0)
    assert batch_render_config(GPUConfig(enable_batch_processing=False)).max_batch_size == 1
    # the engine's defaults are the configuration's: torch.compile is off unless gpu.enable_torch_compile
    assert ENGINE.enable_torch_compile is GPUConfig().enable_torch_compile is False


def test_async_engine_renders_in_order_off_the_loop():
    async def main():
        e = OptimizedSynthesisEngine(ENGINE, device="cpu", block_frames=4410)
        e.add_station("a", StationParams(), 1)
        ae = AsyncSynthesisEngine(e, max_workers=2)
        blocks = await asyncio.gather(*(ae.render_block_async() for _ in range(4)))
        await ae.shutdown()
        return ae, blocks

    ae, blocks = asyncio.run(main())
    _, ref = _render(4, stations=(("a", "focus", 1),), block_frames=4410)
    got = np.concatenate([b["a"] for b in blocks])
    assert ae.render_count == 4 and ae.total_render_time > 0
    assert sorted(map(bytes, (b["a"].tobytes() for b in blocks))) == sorted(
        ref["a"][i * 4410:(i + 1) * 4410].tobytes() for i in range(4))
    assert got.shape == (4 * 4410, 2)
