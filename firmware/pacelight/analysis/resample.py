"""Streaming polyphase resampler: any input rate → the 16 kHz frame clock, chunk-size invariant.

Output sample ``m`` is computed from the input samples around time ``m / rate_out`` with a
Kaiser-windowed low-pass FIR (the design ``scipy.signal.resample_poly`` uses), evaluated as a
polyphase filter by global sample index. Because every output sample depends only on its index
and the input, the result is identical however the input is chunked. The filter's group delay
is compensated, so output time ``t`` corresponds to input time ``t``.
"""

from __future__ import annotations

from math import gcd

import numpy as np


class StreamingResampler:
    """Resample a (n, channels) float32 stream from ``rate_in_hz`` to ``rate_out_hz``."""

    def __init__(self, rate_in_hz: int, rate_out_hz: int, channels: int) -> None:
        if rate_in_hz <= 0 or rate_out_hz <= 0:
            raise ValueError("sample rates must be positive")
        g = gcd(rate_in_hz, rate_out_hz)
        self.up = rate_out_hz // g
        self.down = rate_in_hz // g
        self.channels = channels
        self._n_in = 0  # input samples received so far
        self._m = 0  # next output sample index
        self._passthrough = self.up == 1 and self.down == 1
        if self._passthrough:
            return
        from scipy.signal import firwin  # lazy: scipy only when resampling is needed

        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate
        h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        self._delay = half_len  # group delay in upsampled samples
        taps = -(-len(h) // self.up)
        h = np.concatenate([h, np.zeros(taps * self.up - len(h))])
        # _poly[phase, k] multiplies x[base - k]; stored reversed so a row dots a forward slice.
        self._poly = h.reshape(taps, self.up).T[:, ::-1].astype(np.float64).copy()
        self._taps = taps
        # History buffer: absolute input index of _buf[0] is _buf_start (negative = zero padding).
        self._buf = np.zeros((taps, channels), dtype=np.float64)
        self._buf_start = -taps

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed input samples (n, channels); return the output samples now computable."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, self.channels)
        self._n_in += len(x)
        if self._passthrough:
            return x.astype(np.float32)
        self._buf = np.concatenate([self._buf, x]) if len(x) else self._buf
        # Output m needs input up to index (m*down + delay)//up.
        m_end = max(self._m, (self.up * self._n_in - 1 - self._delay) // self.down + 1)
        return self._emit(m_end)

    def flush(self) -> np.ndarray:
        """Emit the remaining output (the input is padded with zeros past its end)."""
        if self._passthrough:
            return np.zeros((0, self.channels), dtype=np.float32)
        total = -(-self._n_in * self.up // self.down)
        need = (max(total - 1, 0) * self.down + self._delay) // self.up + 1
        pad = need - (self._buf_start + len(self._buf))
        if pad > 0:
            self._buf = np.concatenate([self._buf, np.zeros((pad, self.channels))])
        return self._emit(total)

    def _emit(self, m_end: int) -> np.ndarray:
        if m_end <= self._m:
            return np.zeros((0, self.channels), dtype=np.float32)
        m = np.arange(self._m, m_end, dtype=np.int64)
        t = m * self.down + self._delay
        phase = t % self.up
        first = t // self.up - (self._taps - 1) - self._buf_start  # buffer index of the oldest tap
        idx = first[:, None] + np.arange(self._taps)[None, :]
        coeffs = self._poly[phase]
        out = np.empty((len(m), self.channels), dtype=np.float32)
        for c in range(self.channels):  # a handful of channels, vectorised over samples and taps
            out[:, c] = (self._buf[idx, c] * coeffs).sum(axis=1)
        self._m = m_end
        # Drop history no future output needs.
        keep_from = (m_end * self.down + self._delay) // self.up - (self._taps - 1) - self._buf_start
        if keep_from > 0:
            self._buf = self._buf[keep_from:]
            self._buf_start += keep_from
        return out
