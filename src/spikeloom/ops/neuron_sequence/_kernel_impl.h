// Kernel bodies of _kernel.cpp, included once per instruction set (see "ISA variants" there):
// each inclusion sits in its own namespace under its own `#pragma GCC target`, so the same source
// is compiled for AVX-512, AVX2 and the baseline, and the best one the CPU supports is picked
// at run time. No includes here: the including file provides <cmath>, <cstdint>, <cstring>
// and the shared types (Operand, Surr, Params, CHUNK_BYTES), and defines `kFma` in the
// namespace: whether this variant's target has fused multiply-add.

// a·b + c: fused (one rounding) in variants with FMA, otherwise two roundings. Used in the
// backward only (surrogate derivatives, gradient sums); the forward and the backward's
// recomputation of u keep separate roundings so that spikes equal the reference bit for bit.
template <typename R>
inline R madd(R a, R b, R c) {
  if constexpr (kFma) {
    if constexpr (sizeof(R) == 4)
      return __builtin_fmaf(a, b, c);
    else
      return __builtin_fma(a, b, c);
  } else {
    return a * b + c;
  }
}

// exp(x) for the surrogates: float uses a branch-free polynomial the compiler vectorises
// (range reduction x = n·ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial in Horner form with
// madd, error ~1e-7 relative, argument clamped to [-80, 80] where the surrogates are ~1e-35
// anyway); double keeps the C library's exp.
inline float vexp(float x) {
  x = x < -80.0f ? -80.0f : (x > 80.0f ? 80.0f : x);
  const float magic = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to integer
  float n = (x * 1.44269504088896341f + magic) - magic;
  float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;  // ln2 split in two parts
  float p = 1.0f / 5040.0f;
  p = madd(p, r, 1.0f / 720.0f);
  p = madd(p, r, 1.0f / 120.0f);
  p = madd(p, r, 1.0f / 24.0f);
  p = madd(p, r, 1.0f / 6.0f);
  p = madd(p, r, 0.5f);
  p = madd(p, r, 1.0f);
  p = madd(p, r, 1.0f);
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double vexp(double x) { return std::exp(x); }

// Surrogate derivative h(z) with its constants computed once (a division or square root
// inside the loop would keep the compiler from if-converting and vectorising it).
template <typename R, int S>
struct Surrogate {
  R c0, c1, c2;
  explicit Surrogate(R p) {
    if constexpr (S == RECT) {
      c0 = p / R(2);
      c1 = R(1) / p;
    } else if constexpr (S == TRI) {
      c0 = std::sqrt(p) / R(2);
      c1 = p / R(4);
    } else if constexpr (S == SIGMOID) {
      c0 = p;
    } else if constexpr (S == ATAN) {
      c0 = R(M_PI / 2) * p;
      c1 = p / R(2);
    } else {
      c0 = p;
      c1 = p * std::sqrt(R(2 * M_PI));
    }
  }
  inline R operator()(R z) const {
    if constexpr (S == RECT) {
      return (std::fabs(z) < c0) ? c1 : R(0);
    } else if constexpr (S == TRI) {
      R g = c0 - c1 * std::fabs(z);
      return g > R(0) ? g : R(0);
    } else if constexpr (S == SIGMOID) {
      R sg = R(1) / (R(1) + vexp(-(c0 * z)));
      return c0 * sg * (R(1) - sg);
    } else if constexpr (S == ATAN) {
      R w = c0 * z;
      return c1 / (R(1) + w * w);
    } else {
      R w = z / c0;
      return vexp(R(-0.5) * (w * w)) / c1;
    }
  }
};

// Pointer to the n neurons [i0, i0 + n) of row t; a broadcast or absent (ptr 0: zeros) row
// is written into buf.
template <typename R>
inline const R* row(const Operand& a, int64_t t, int64_t i0, int64_t n, R* buf) {
  if (!a.ptr) {
    for (int64_t j = 0; j < n; ++j) buf[j] = R(0);
    return buf;
  }
  const R* p = reinterpret_cast<const R*>(a.ptr) + t * a.st;
  if (a.sn) return p + i0;
  for (int64_t j = 0; j < n; ++j) buf[j] = p[0];
  return buf;
}


// dst[0, n) = src[0, n). With `stream`, the aligned body uses non-temporal (cache-bypassing)
// stores where the target has them (SSE2 on x86-64): a large output is written without first
// being read into the cache (no read-for-ownership), and it does not evict the inputs. Same
// values either way; the caller issues a store fence before the data is used elsewhere.
template <typename R>
inline void store_row(R* __restrict dst, const R* __restrict src, int64_t n, bool stream) {
  int64_t j = 0;
#if defined(__SSE2__)
  if (stream) {
    for (; j < n && (reinterpret_cast<uintptr_t>(dst + j) & 15); ++j) dst[j] = src[j];
    if constexpr (sizeof(R) == 4) {
      for (; j + 4 <= n; j += 4)
        _mm_stream_ps(reinterpret_cast<float*>(dst + j),
                      _mm_loadu_ps(reinterpret_cast<const float*>(src + j)));
    } else {
      for (; j + 2 <= n; j += 2)
        _mm_stream_pd(reinterpret_cast<double*>(dst + j),
                      _mm_loadu_pd(reinterpret_cast<const double*>(src + j)));
    }
  }
#endif
  for (; j < n; ++j) dst[j] = src[j];
}

inline void store_fence(bool stream) {
#if defined(__SSE2__)
  if (stream) _mm_sfence();
#endif
  (void)stream;
}

// Forward over the neurons [i0, i0 + n): spikes into s[t * N + j] and pre-reset potentials into
// ub[t * u_rs + j] (each skipped when STORE_S / STORE_U is false), final state into vT[i0 + j]
// (skipped when null). The backward's recomputation runs it with u in a small scratch buffer.
template <typename R, bool SOFT, bool GE, bool STORE_S, bool STORE_U>
void forward_chunk_impl(const Params& P, const Operand& x, const Operand& k, const Operand& v0,
                        R* s, R* ub, int64_t u_rs, R* vT, int64_t i0, int64_t n) {
  alignas(64) R v[kChunk<R>], kb[kChunk<R>], xb[kChunk<R>], sb[kChunk<R>];
  const R v_th = R(P.v_th), v_reset = R(P.v_reset);
  const R* kk = row<R>(k, 0, i0, n, kb);
  const R* p0 = row<R>(v0, 0, i0, n, xb);  // zeros when absent
  for (int64_t j = 0; j < n; ++j) v[j] = p0[j];
  for (int64_t t = 0; t < P.T; ++t) {
    const R* xt = row<R>(x, t, i0, n, xb);
    R* __restrict ut = STORE_U ? ub + t * u_rs : nullptr;
#pragma GCC ivdep
    for (int64_t j = 0; j < n; ++j) {
      R uu = v[j] + xt[j];
      R sp = (GE ? (uu >= v_th) : (uu > v_th)) ? R(1) : R(0);
      R r = SOFT ? (uu - v_th * sp) : (sp != R(0) ? v_reset : uu);
      v[j] = kk[j] * r;
      if constexpr (STORE_S) sb[j] = sp;
      if constexpr (STORE_U) ut[j] = uu;
    }
    if constexpr (STORE_S) store_row(s + t * P.N + i0, sb, n, P.stream);
  }
  if (vT)
    for (int64_t j = 0; j < n; ++j) vT[i0 + j] = v[j];
  if constexpr (STORE_S) store_fence(P.stream);
}

template <typename R, bool SOFT, bool GE>
void forward_chunk(const Params& P, const Operand& x, const Operand& k, const Operand& v0,
                   R* s, R* u, R* vT, int64_t i0, int64_t n) {
  if (u)
    forward_chunk_impl<R, SOFT, GE, true, true>(P, x, k, v0, s, u + i0, P.N, vT, i0, n);
  else
    forward_chunk_impl<R, SOFT, GE, true, false>(P, x, k, v0, s, nullptr, 0, vT, i0, n);
}

// dL/dx[t] = g_u[t] + g_s[t]·h(u[t] - V_th) + k·(dr/du)·dL/dv[t];  dL/dv[t-1] = dL/dx[t];
// dL/dk += dL/dv[t]·r[t]. Absent gradients are zeros (adding a zero is exact).
// When u is null, the chunk's u is first recomputed from x and v0 (the forward recurrence, bit
// for bit) into `scratch` (T x n, this thread's; the caller sizes chunks so that it stays in the
// L2 cache), so the gradient pass reads it from cache instead of memory.
template <typename R, int S, bool SOFT, bool GE, bool DETACH, bool NEEDK>
void backward_chunk(const Params& P, const R* u, const Operand& x, const Operand& v0,
                    const Operand& k, const Operand& gs, const Operand& gu, const Operand& gv,
                    R* gx, R* gk, R* scratch, int64_t i0, int64_t n) {
  const R* ub = u + i0;
  int64_t u_rs = P.N;
  if (!u) {
    forward_chunk_impl<R, SOFT, GE, false, true>(P, x, k, v0, nullptr, scratch, n, nullptr,
                                                 i0, n);
    ub = scratch;
    u_rs = n;
  }
  alignas(64) R g[kChunk<R>], acc[kChunk<R>], kb[kChunk<R>], b1[kChunk<R>], b2[kChunk<R>];
  const R v_th = R(P.v_th), v_reset = R(P.v_reset);
  const Surrogate<R, S> surrogate_grad(static_cast<R>(P.surr_p));
  const R* kk = row<R>(k, 0, i0, n, kb);
  const R* g0 = row<R>(gv, 0, i0, n, b1);
  for (int64_t j = 0; j < n; ++j) {
    g[j] = g0[j];
    acc[j] = R(0);
  }
  // an absent incoming gradient is a row of zeros, written once (not once per step)
  if (!gs.ptr) row<R>(gs, 0, i0, n, b1);
  if (!gu.ptr) row<R>(gu, 0, i0, n, b2);
  for (int64_t t = P.T - 1; t >= 0; --t) {
    const R* __restrict ut = ub + t * u_rs;
    const R* gst = gs.ptr ? row<R>(gs, t, i0, n, b1) : b1;
    const R* gut = gu.ptr ? row<R>(gu, t, i0, n, b2) : b2;
#pragma GCC ivdep
    for (int64_t j = 0; j < n; ++j) {
      R uu = ut[j];
      R h = surrogate_grad(uu - v_th);
      R sp = (GE ? (uu >= v_th) : (uu > v_th)) ? R(1) : R(0);
      R m;  // dr/du
      if constexpr (SOFT)
        m = DETACH ? R(1) : madd(h, -v_th, R(1));
      else
        m = DETACH ? (R(1) - sp) : madd(v_reset - uu, h, R(1) - sp);
      R out = madd(gst[j], h, gut[j]);
      out = madd(m * kk[j], g[j], out);
      if constexpr (NEEDK) {
        R r = SOFT ? (uu - v_th * sp) : (uu + uu * sp * R(-1) + sp * v_reset);
        acc[j] = madd(g[j], r, acc[j]);
      }
      g[j] = out;
    }
    store_row(gx + t * P.N + i0, g, n, P.stream);
  }
  store_fence(P.stream);
  if (NEEDK)
    for (int64_t j = 0; j < n; ++j) gk[i0 + j] = acc[j];
}

// Compile-time dispatch: one specialised (branch-free, vectorisable) loop per combination.
template <typename R>
FwdFn<R> pick_forward(const Params& P) {
  if (P.soft) return P.fire_ge ? forward_chunk<R, true, true> : forward_chunk<R, true, false>;
  return P.fire_ge ? forward_chunk<R, false, true> : forward_chunk<R, false, false>;
}

template <typename R, int S, bool SOFT, bool GE, bool DETACH>
BwdFn<R> pick_backward_k(bool needk) {
  return needk ? backward_chunk<R, S, SOFT, GE, DETACH, true>
               : backward_chunk<R, S, SOFT, GE, DETACH, false>;
}

template <typename R, int S>
BwdFn<R> pick_backward_s(const Params& P, bool needk) {
  const int c = (P.soft ? 4 : 0) + (P.fire_ge ? 2 : 0) + (P.detach ? 1 : 0);
  switch (c) {
    case 0: return pick_backward_k<R, S, false, false, false>(needk);
    case 1: return pick_backward_k<R, S, false, false, true>(needk);
    case 2: return pick_backward_k<R, S, false, true, false>(needk);
    case 3: return pick_backward_k<R, S, false, true, true>(needk);
    case 4: return pick_backward_k<R, S, true, false, false>(needk);
    case 5: return pick_backward_k<R, S, true, false, true>(needk);
    case 6: return pick_backward_k<R, S, true, true, false>(needk);
    default: return pick_backward_k<R, S, true, true, true>(needk);
  }
}

template <typename R>
BwdFn<R> pick_backward(const Params& P, bool needk) {
  switch (P.surr) {
    case RECT: return pick_backward_s<R, RECT>(P, needk);
    case TRI: return pick_backward_s<R, TRI>(P, needk);
    case SIGMOID: return pick_backward_s<R, SIGMOID>(P, needk);
    case ATAN: return pick_backward_s<R, ATAN>(P, needk);
    default: return pick_backward_s<R, GAUSS>(P, needk);
  }
}

