"""Synthesis: band-limited wavetable voices, filters, convolution reverb and a master bus, in torch.

Everything renders as tensors shaped [stations, voices, samples]; oscillator phase and envelopes are
functions of absolute time, and filter, reverb and limiter state is carried from block to block, so
block and phrase boundaries are inaudible by construction.
"""
