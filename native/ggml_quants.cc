#include "ggml_quants.h"

#include <c10/util/Half.h>

#include <cstring>

// The decoders must round as numpy does in gguf-py: a product and a sum are two float32
// roundings. Keep the compiler from fusing them into one FMA (GCC does by default where the
// target has FMA: aarch64, or x86 with -march=native), which would change the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace mentallam {

namespace {

constexpr int64_t kQK = 32;     // elements per block of the legacy quants (Q4_0 ... Q8_0)
constexpr int64_t kQK_K = 256;  // elements per super-block of the K-quants

float Fp16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return static_cast<float>(c10::Half(bits, c10::Half::from_bits()));
}

void DecodeF32(const uint8_t* blocks, int64_t n, float* out) {
  std::memcpy(out, blocks, static_cast<size_t>(n) * 4);
}

void DecodeF16(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = Fp16(blocks + 2 * i);
}

// bfloat16 is the top half of a float32: widening is a shift, exact for every value and NaN.
void DecodeBf16(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, blocks + 2 * i, 2);
    uint32_t wide = static_cast<uint32_t>(bits) << 16;
    std::memcpy(out + i, &wide, 4);
  }
}

// Q8_0 (34 bytes): d (f16), 32 x int8.  y = q * d.
void DecodeQ8_0(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n; ++b, blocks += 34, out += kQK) {
    float d = Fp16(blocks);
    const auto* q = reinterpret_cast<const int8_t*>(blocks + 2);
    for (int j = 0; j < kQK; ++j) out[j] = static_cast<float>(q[j]) * d;
  }
}

// Q4_0 (18 bytes): d, 16 bytes of nibbles; low nibbles are elements 0..15, high ones 16..31.
// y = (q - 8) * d.
void DecodeQ4_0(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n; ++b, blocks += 18, out += kQK) {
    float d = Fp16(blocks);
    const uint8_t* qs = blocks + 2;
    for (int j = 0; j < kQK / 2; ++j) {
      out[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
      out[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

// Q4_1 (20 bytes): d, m, 16 bytes of nibbles.  y = d * q + m.
void DecodeQ4_1(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n; ++b, blocks += 20, out += kQK) {
    float d = Fp16(blocks), m = Fp16(blocks + 2);
    const uint8_t* qs = blocks + 4;
    for (int j = 0; j < kQK / 2; ++j) {
      out[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
      out[j + kQK / 2] = d * static_cast<float>(qs[j] >> 4) + m;
    }
  }
}

// The fifth bit of element j of a Q5_0/Q5_1 block is bit j of the little-endian u32 qh.
uint32_t ReadU32(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, 4);
  return value;
}

// Q5_0 (22 bytes): d, qh (u32), 16 bytes of nibbles.  y = (q - 16) * d, q in [0, 32).
void DecodeQ5_0(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n; ++b, blocks += 22, out += kQK) {
    float d = Fp16(blocks);
    uint32_t qh = ReadU32(blocks + 2);
    const uint8_t* qs = blocks + 6;
    for (int j = 0; j < kQK / 2; ++j) {
      int q0 = (qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
      int q1 = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      out[j] = d * static_cast<float>(q0 - 16);
      out[j + kQK / 2] = d * static_cast<float>(q1 - 16);
    }
  }
}

// Q5_1 (24 bytes): d, m, qh, 16 bytes of nibbles.  y = d * q + m.
void DecodeQ5_1(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n; ++b, blocks += 24, out += kQK) {
    float d = Fp16(blocks), m = Fp16(blocks + 2);
    uint32_t qh = ReadU32(blocks + 4);
    const uint8_t* qs = blocks + 8;
    for (int j = 0; j < kQK / 2; ++j) {
      int q0 = (qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
      int q1 = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      out[j] = d * static_cast<float>(q0) + m;
      out[j + kQK / 2] = d * static_cast<float>(q1) + m;
    }
  }
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block, packed in 12 bytes:
// bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7 the same
// for the mins; bytes 8-11 the low 4 bits of scales 4-7 (low nibble) and mins 4-7 (high).
void ScaleMinK4(int j, const uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K (144 bytes): d, dmin, 12 bytes of scales, 128 bytes of nibbles. Eight sub-blocks of 32;
// each 32 bytes of nibbles hold two sub-blocks (low nibbles first).
// y = (d * scale) * q - (dmin * min).
void DecodeQ4_K(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n; ++b, blocks += 144, out += kQK_K) {
    float d = Fp16(blocks), dmin = Fp16(blocks + 2);
    const uint8_t* scales = blocks + 4;
    const uint8_t* qs = blocks + 16;
    for (int g = 0; g < 4; ++g, qs += 32) {
      int sc1, m1, sc2, m2;
      ScaleMinK4(2 * g, scales, &sc1, &m1);
      ScaleMinK4(2 * g + 1, scales, &sc2, &m2);
      float d1 = d * static_cast<float>(sc1), min1 = dmin * static_cast<float>(m1);
      float d2 = d * static_cast<float>(sc2), min2 = dmin * static_cast<float>(m2);
      float* y = out + 64 * g;
      for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(qs[l] & 0x0F) - min1;
      for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>(qs[l] >> 4) - min2;
    }
  }
}

// Q5_K (176 bytes): d, dmin, 12 bytes of scales, 32 bytes qh, 128 bytes of nibbles. Bit s of
// qh[l] is the fifth bit of element l of sub-block s.
void DecodeQ5_K(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n; ++b, blocks += 176, out += kQK_K) {
    float d = Fp16(blocks), dmin = Fp16(blocks + 2);
    const uint8_t* scales = blocks + 4;
    const uint8_t* qh = blocks + 16;
    const uint8_t* qs = blocks + 48;
    for (int g = 0; g < 4; ++g, qs += 32) {
      int sc1, m1, sc2, m2;
      ScaleMinK4(2 * g, scales, &sc1, &m1);
      ScaleMinK4(2 * g + 1, scales, &sc2, &m2);
      float d1 = d * static_cast<float>(sc1), min1 = dmin * static_cast<float>(m1);
      float d2 = d * static_cast<float>(sc2), min2 = dmin * static_cast<float>(m2);
      float* y = out + 64 * g;
      for (int l = 0; l < 32; ++l) {
        int q = (qs[l] & 0x0F) | (((qh[l] >> (2 * g)) & 1) << 4);
        y[l] = d1 * static_cast<float>(q) - min1;
      }
      for (int l = 0; l < 32; ++l) {
        int q = (qs[l] >> 4) | (((qh[l] >> (2 * g + 1)) & 1) << 4);
        y[32 + l] = d2 * static_cast<float>(q) - min2;
      }
    }
  }
}

// Q6_K (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales, d.
// Two halves of 128 elements; in each, ql[l] / ql[l+32] hold elements l, l+32 (low nibbles)
// and l+64, l+96 (high nibbles), qh[l] their high bits in pairs. Sixteen sub-blocks of 16
// elements, one scale each.  y = (d * scale) * (q - 32).
void DecodeQ6_K(const uint8_t* blocks, int64_t n, float* out) {
  for (int64_t b = 0; b < n; ++b, blocks += 210, out += kQK_K) {
    const uint8_t* ql = blocks;
    const uint8_t* qh = blocks + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(blocks + 192);
    float d = Fp16(blocks + 208);
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8) {
      float* y = out + 128 * half;
      for (int l = 0; l < 32; ++l) {
        int is = l / 16;
        int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

// Every type of gguf-py's GGML_QUANT_SIZES (gguf 0.19): id, name, block size, bytes per block.
const GgmlType kTypes[] = {
    {0, "F32", 1, 4, DecodeF32},        {1, "F16", 1, 2, DecodeF16},
    {2, "Q4_0", 32, 18, DecodeQ4_0},    {3, "Q4_1", 32, 20, DecodeQ4_1},
    {6, "Q5_0", 32, 22, DecodeQ5_0},    {7, "Q5_1", 32, 24, DecodeQ5_1},
    {8, "Q8_0", 32, 34, DecodeQ8_0},    {9, "Q8_1", 32, 40, nullptr},
    {10, "Q2_K", 256, 84, nullptr},     {11, "Q3_K", 256, 110, nullptr},
    {12, "Q4_K", 256, 144, DecodeQ4_K}, {13, "Q5_K", 256, 176, DecodeQ5_K},
    {14, "Q6_K", 256, 210, DecodeQ6_K}, {15, "Q8_K", 256, 292, nullptr},
    {16, "IQ2_XXS", 256, 66, nullptr},  {17, "IQ2_XS", 256, 74, nullptr},
    {18, "IQ3_XXS", 256, 98, nullptr},  {19, "IQ1_S", 256, 50, nullptr},
    {20, "IQ4_NL", 32, 18, nullptr},    {21, "IQ3_S", 256, 110, nullptr},
    {22, "IQ2_S", 256, 82, nullptr},    {23, "IQ4_XS", 256, 136, nullptr},
    {24, "I8", 1, 1, nullptr},          {25, "I16", 1, 2, nullptr},
    {26, "I32", 1, 4, nullptr},         {27, "I64", 1, 8, nullptr},
    {28, "F64", 1, 8, nullptr},         {29, "IQ1_M", 256, 56, nullptr},
    {30, "BF16", 1, 2, DecodeBf16},     {34, "TQ1_0", 256, 54, nullptr},
    {35, "TQ2_0", 256, 66, nullptr},    {39, "MXFP4", 32, 17, nullptr},
    {40, "NVFP4", 64, 36, nullptr},     {41, "Q1_0", 128, 18, nullptr},
};

}  // namespace

const GgmlType* FindGgmlType(uint32_t id) {
  for (const auto& type : kTypes) {
    if (type.id == id) return &type;
  }
  return nullptr;
}

std::string GgmlTypeName(uint32_t id) {
  const GgmlType* type = FindGgmlType(id);
  return type ? type->name : "type " + std::to_string(id);
}

std::string DecodableGgmlTypes() {
  std::string out;
  for (const auto& type : kTypes) {
    if (!type.decode) continue;
    if (!out.empty()) out += ", ";
    out += type.name;
  }
  return out;
}

}  // namespace mentallam
