/* cuda_fp16.h for the cuda-emu target: a stand-in __half, found on the include path ahead of
 * CUDA's own, so sources that include <cuda_fp16.h> compile unchanged with g++.
 *
 * __half holds IEEE binary16 bits (the layout of numpy's float16, so arrays pass through as they
 * are); arithmetic converts to float, as device code without native half math does. Conversions
 * use the compiler's _Float16, which rounds to nearest even exactly as __float2half does.
 */
#ifndef TENSORC_CUDA_EMU_FP16_H
#define TENSORC_CUDA_EMU_FP16_H

#include <stdint.h>
#include <string.h>

struct __half {
  uint16_t bits;
  __half() = default;
  __half(float f) {
    _Float16 h = static_cast<_Float16>(f);
    memcpy(&bits, &h, 2);
  }
  operator float() const {
    _Float16 h;
    memcpy(&h, &bits, 2);
    return static_cast<float>(h);
  }
};

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return float(h); }
inline __half __hadd(__half a, __half b) { return __half(float(a) + float(b)); }
inline __half __hsub(__half a, __half b) { return __half(float(a) - float(b)); }
inline __half __hmul(__half a, __half b) { return __half(float(a) * float(b)); }
inline __half __hdiv(__half a, __half b) { return __half(float(a) / float(b)); }

#endif /* TENSORC_CUDA_EMU_FP16_H */
