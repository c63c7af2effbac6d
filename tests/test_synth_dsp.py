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


def test_slow_rows_are_band_limited_for_the_low_rate():
    """Rows read at 14.7 kHz (pads, bass, swell) hold nothing the 3x upsampler could not remove."""
    from auralis_ray.synth.tables import NOISE_LEN, SLOW_HARMONIC_LIMIT_HZ

    t = wave_tables(SR)
    for family in ("pad", "bass"):
        for m, top in enumerate(MIP_TOP_HZ):
            row = t._rows[(family, 2 if family != "bass" else 0, m, "slow")]
            cycle = t.pairs[row.base:row.base + SPC, 0].astype(np.float64)
            spec = np.abs(np.fft.rfft(cycle))
            highest = np.nonzero(spec > 1e-3 * spec.max())[0].max()
            assert highest * top <= SLOW_HARMONIC_LIMIT_HZ + 1e-6
    row = t._rows[("swell", 2, 0, "slow")]
    noise = t.pairs[row.base:row.base + NOISE_LEN, 0].astype(np.float64)
    spec = np.abs(np.fft.rfft(noise)) ** 2
    f = np.fft.rfftfreq(NOISE_LEN, 1 / SR)
    assert spec[f > SLOW_HARMONIC_LIMIT_HZ].sum() < 1e-8 * spec.sum()


def test_limiter_measures_the_4x_true_peak():
    """Short bright bursts whose peaks fall a quarter of a sample off the grid: the sample peak and the
    half-way points miss them (the previous limiter let these through at -0.3 dBTP with a -1.0 ceiling);
    the 4x oversampled peak, what the BS.1770 meter measures, stays at the ceiling."""
    bus = MasterBus(SR, 4410, target_lufs=-8.0, ceiling_dbtp=-1.0)
    st = bus.zero_state(1, 1.0)
    n = 3 * SR
    t = np.arange(n) / SR
    x = 0.05 * np.sin(2 * np.pi * 220 * t)
    for k, c in enumerate(range(2000, n - 2000, 2205)):
        t0 = (c + 0.25 + 0.5 * (k % 2)) / SR
        x += 0.95 * np.exp(-0.5 * ((t - t0) / 0.0003) ** 2) * np.cos(2 * np.pi * 11025 * (t - t0))
    x = torch.tensor(np.stack([x, x])[None], dtype=torch.float32)
    y = torch.cat([bus(x[..., i:i + 4410], st) for i in range(0, n, 4410)], -1)[0].numpy()
    up = signal.resample_poly(y.T.astype(np.float64), 4, 1, axis=0)
    tp = 20 * np.log10(np.abs(up).max())
    assert -1.6 <= tp <= -0.95, tp  # at the ceiling (interpolator vs meter: a few hundredths of a dB)
    assert 20 * np.log10(np.abs(y).max()) < tp - 0.5  # the sample peak alone would have missed it


def test_loudness_control_gates_like_bs1770():
    """Loud passages alternating with long quiet ones (25 dB down): the quiet blocks fall under the
    relative gate, so the output's integrated loudness (pyloudnorm) lands on the target."""
    import pyloudnorm

    bus = MasterBus(SR, 4410, target_lufs=-16.0, ceiling_dbtp=-1.0)
    st = bus.zero_state(1, 1.0)
    rng = np.random.default_rng(5)
    n = 90 * SR
    level = np.where((np.arange(n) // (6 * SR)) % 2 == 0, 0.1, 0.1 * 10 ** (-25 / 20))
    noise = signal.lfilter([1.0], [1.0, -0.9], rng.normal(size=(2, n)), axis=1) * 0.2
    x = torch.tensor((noise * level)[None], dtype=torch.float32)
    y = torch.cat([bus(x[..., i:i + 44100], st) for i in range(0, n, 44100)], -1)[0].numpy()
    lufs = pyloudnorm.Meter(SR).integrated_loudness(y[:, 30 * SR:].T.astype(np.float64))
    assert abs(lufs - (-16.0)) < 0.5, lufs


def test_reverb_banded_gemms_match_the_direct_firs():
    """decimate / upsample as banded GEMMs give the direct polyphase FIRs' samples (float rounding only)."""
    from auralis_ray.synth.filters import decimate_fir, fir_bank
    rv = ConvolutionReverb(block_frames=4410)
    rng = np.random.default_rng(3)
    send = torch.from_numpy(rng.normal(size=(2, 4410)).astype(np.float32))
    state = rv.zero_state(2)
    state["rv_dec"] = torch.from_numpy(rng.normal(size=state["rv_dec"].shape).astype(np.float32))
    state["rv_int"] = torch.from_numpy(rng.normal(size=state["rv_int"].shape).astype(np.float32))
    ref_dec = decimate_fir(torch.cat([state["rv_dec"], send], dim=1), rv.dec_w, 3)
    zin = torch.cat([state["rv_int"], ref_dec[:, None].expand(2, 2, -1)], dim=2)
    ref_up = fir_bank(zin.reshape(4, -1), rv.int_w).transpose(1, 2).reshape(2, 2, -1)
    got_dec = rv.decimate(send, state)
    got_up = rv.upsample(got_dec[:, None].expand(2, 2, -1).contiguous(), state)
    assert torch.allclose(got_dec, ref_dec, atol=1e-5) and torch.allclose(got_up, ref_up, atol=1e-5)


def test_sparse_lane_render_matches_dense():
    """Fast lanes expand only their sounding segments; the mix equals the dense expansion of every segment."""
    from auralis_ray.synth.voices import GRID, LaneRenderer
    tables = wave_tables(44100)
    lanes = LaneRenderer(tables, torch.device("cpu"))
    rng = np.random.default_rng(5)
    S, V, Nc = 3, 5, 4410 // GRID
    ctrl = np.zeros((5, S, V, Nc), dtype=np.float32)
    on = rng.random((S, V, Nc)) < 0.4
    on[1] = False  # a silent station
    ctrl[0] = rng.random((S, V, Nc)) * 100
    ctrl[1] = rng.random((S, V, Nc)) * 3
    ctrl[2] = np.where(on, rng.random((S, V, Nc)), 0)
    ctrl[3] = np.where(on, rng.normal(size=(S, V, Nc)) * 1e-3, 0)
    ctrl[4] = np.float32(tables.row("lead", 0.5, 440.0, False).base)
    mix = rng.random((S, 3, V)).astype(np.float32)
    dense = lanes.render(torch.from_numpy(ctrl), torch.from_numpy(mix))
    sparse = lanes.render_sparse(ctrl, mix)
    assert sparse.shape == dense.shape and torch.allclose(sparse, dense, atol=1e-5)
    assert not sparse[1].any()


def test_a_control_segment_of_the_highest_note_never_leaves_its_table_row():
    from auralis_ray.music.composer import Composer
    from auralis_ray.music.params import StationParams
    from auralis_ray.music.theory import midi_to_hz
    from auralis_ray.synth.tables import CYCLES, MAX_OSC_HZ, SPC
    from auralis_ray.synth.voices import _MOD, GRID

    # a segment starts anywhere in the first cycle and reads GRID frames at up to MAX_OSC_HZ
    assert SPC + GRID * MAX_OSC_HZ / 44100 * SPC <= CYCLES * SPC
    top = 0.0
    for key in ("B", "A#", "C"):
        for seed in range(4):
            p = StationParams.from_preset("bright", key=key)
            for n in Composer(p, seed, 44100, grid=GRID).compose_until(300 * 44100):
                if n.instrument in ("pad", "bass", "lead", "thump"):
                    vib, _, drop, _ = _MOD[n.instrument]
                    top = max(top, midi_to_hz(n.midi) * 2 ** (n.detune_cents / 1200) * drop * (1 + vib))
    assert 1000.0 < top < MAX_OSC_HZ
