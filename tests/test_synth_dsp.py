import numpy as np
import pytest
import torch
from scipy import signal

from auralis_ray.synth.filters import (ChunkedIIR, biquad_highpass, biquad_lowpass, k_weighting, moving_average,
                                       running_min)
from auralis_ray.synth.master import MasterBus
from auralis_ray.synth.reverb import ConvolutionReverb
from auralis_ray.synth.tables import HARMONIC_LIMIT_HZ, MIP_TOP_HZ, SPC, wave_tables

SR = 44100


@pytest.mark.parametrize("sections", [[biquad_highpass(25, 0.707, SR), biquad_lowpass(9000, 0.707, SR)],
                                      k_weighting(SR)])
def test_chunked_iir_matches_lfilter_across_blocks(sections):
    x = np.random.default_rng(0).normal(size=(2, 2, 3 * 4410)).astype(np.float32)
    ref = x.astype(np.float64)
    for b, a in sections:
        ref = signal.lfilter(b, a, ref, axis=-1)
    f = ChunkedIIR(sections)
    s = f.zero_state(2, 2)
    y1, s = f(torch.from_numpy(x[..., :4410]), s)
    y2, s = f(torch.from_numpy(x[..., 4410:]), s)
    y = torch.cat([y1, y2], -1).numpy()
    assert np.abs(y - ref).max() < 2e-3 * np.abs(ref).max()


def test_running_min_and_moving_average():
    x = torch.rand(3, 500)
    rm = running_min(x, 17)
    ma = moving_average(x, 9)
    ref_min = torch.stack([x[:, i:i + 17].min(1).values for i in range(500 - 16)], 1)
    ref_ma = torch.stack([x[:, i:i + 9].mean(1) for i in range(500 - 8)], 1)
    assert torch.equal(rm, ref_min) and torch.allclose(ma, ref_ma, atol=1e-6)


def test_wavetables_are_band_limited():
    t = wave_tables(SR)
    for family in ("pad", "lead", "bass"):
        for m, top in enumerate(MIP_TOP_HZ):
            row = t._rows[(family, 2 if family != "bass" else 0, m)]
            cycle = t.pairs[row.base:row.base + SPC, 0].astype(np.float64)
            spec = np.abs(np.fft.rfft(cycle))
            highest = np.nonzero(spec > 1e-3 * spec.max())[0].max()
            assert highest * top <= HARMONIC_LIMIT_HZ + 1e-6  # no partial can pass Nyquist at the row's top


def test_reverb_tail_is_long_smooth_and_block_invariant():
    x = torch.zeros(1, 4 * SR)
    x[0, 100] = 1.0
    a = ConvolutionReverb(SR, 44100)
    b = ConvolutionReverb(SR, 4410)
    sa, sb = a.zero_state(1), b.zero_state(1)
    ya = torch.cat([a(x[:, i:i + 44100], sa) for i in range(0, 4 * SR, 44100)], -1)[0]
    yb = torch.cat([b(x[:, i:i + 4410], sb) for i in range(0, 4 * SR, 4410)], -1)[0]
    assert (ya - yb).abs().max() < 1e-5
    env = ya.pow(2).sum(0).numpy()
    early, late = env[: SR // 2].sum(), env[2 * SR: 3 * SR].sum()
    assert env[:400].sum() < 1e-9 * env.sum() and 1e-5 < late / early < 0.1  # pre-delay, then a decaying tail
    left, right = ya[0].numpy(), ya[1].numpy()
    assert abs(np.corrcoef(left, right)[0, 1]) < 0.3  # decorrelated stereo


def test_limiter_holds_true_peak_under_ceiling():
    bus = MasterBus(SR, 4410, target_lufs=-6.0, ceiling_dbtp=-1.5)
    st = bus.zero_state(1, 4.0)
    t = np.arange(3 * SR) / SR
    x = 0.5 * np.sin(2 * np.pi * 110 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) + 0.3 * np.sin(2 * np.pi * 3150 * t)
    x = torch.tensor(np.stack([x, -x])[None], dtype=torch.float32)
    y = torch.cat([bus(x[..., i:i + 4410], st) for i in range(0, 3 * SR, 4410)], -1)[0].numpy()
    up = signal.resample_poly(y.T.astype(np.float64), 4, 1, axis=0)
    assert 20 * np.log10(np.abs(up).max()) <= -1.0
    assert np.abs(y).max() > 0.6  # it limits, it does not mute
